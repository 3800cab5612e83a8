package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/presenced/presenced/storage/cluster"
)

// openCluster makes this presenced a node of a cluster (cluster.Open).
func (m *Main) openCluster(ctx context.Context) error {
	c, err := cluster.Open(ctx, cluster.Config{Node: m.Config.Node, Site: m.Config.Site,
		Listen: m.Config.NATSListen, ClusterListen: m.Config.ClusterListen, Peers: m.Config.peers,
		DataDir: filepath.Join(m.Config.DataDir, "nats"), URL: m.Config.NATSURL, Security: m.Config.security,
		Replicas: m.Config.ClusterReplicas, Retention: int64(m.Config.LogRetention),
		Log: m.Log.With().Str("component", "cluster").Logger(), NATSLog: m.Log.With().Str("component", "nats").Logger()})
	var server *cluster.ServerError
	var creds *cluster.CredentialsError
	switch {
	case errors.As(err, &server):
		return &ConfigError{Var: "CLUSTER_LISTEN", Err: err}
	case errors.As(err, &creds):
		return &ConfigError{Var: "NATS_CREDS", Err: err}
	case err != nil:
		return err
	}
	m.cluster = c
	return nil
}

// self is what this node tells the cluster of itself.
func (m *Main) self() cluster.Self {
	s := cluster.Self{Version: buildVersion(), Read: func() uint64 { read, _ := m.hub.Durable(); return read }}
	if m.hooksOut != nil {
		s.Delivering = m.hooksOut.Delivering
	}
	return s
}

// clusterStatus reads the cluster's state for /readyz.
func (m *Main) clusterStatus(ctx context.Context) any {
	return m.cluster.Status(ctx, m.self(), m.Config.redactor().String)
}

// cutSince reports whether this node is cut off from its cluster now,
// and since when (never alone).
func (m *Main) cutSince() (time.Time, bool) {
	if m.cluster == nil {
		return time.Time{}, false
	}
	since, why := m.cluster.Cut(time.Now())
	return since, why != ""
}

// cutOff is cutSince without the time.
func (m *Main) cutOff() bool {
	_, cut := m.cutSince()
	return cut
}
