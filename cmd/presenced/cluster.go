package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presenced/presenced/cluster"
)

// clusterWait bounds how long a node waits at start for the cluster
// (JetStream's leader, the buckets and the stream).
const clusterWait = 2 * time.Minute

// openCluster makes this presenced a node of a cluster: an embedded NATS
// server joining its peers, or a connection to an existing NATS; then the
// records bucket and the change log's stream, with
// PRESENCED_CLUSTER_REPLICAS copies.
//
// What is clustered: presence records (an operation holds the user's
// lease and starts from the cluster's record, saved by compare-and-set;
// every node follows them, so timers fire once, on any node, and each
// site's Asterisk is brought to hold the presence), the change log (one
// numbering for every node: a watcher resumes on any node) and webhooks
// (one node at a time delivers each).
func (m *Main) openCluster(ctx context.Context) error {
	log := m.Log.With().Str("component", "cluster").Logger()
	sec := m.Config.security
	var conn *cluster.Conn
	var err error
	if m.Config.ClusterListen != "" {
		var node *cluster.Node
		node, err = cluster.StartNode(ctx, cluster.NodeConfig{Name: m.Config.Node, Listen: m.Config.NATSListen,
			ClusterListen: m.Config.ClusterListen, Peers: m.Config.peers, DataDir: filepath.Join(m.Config.DataDir, "nats"),
			Security: sec, Log: m.Log.With().Str("component", "nats").Logger()})
		if err != nil {
			return &ConfigError{Var: "CLUSTER_LISTEN", Err: err}
		}
		m.natsNode = node
		log.Info().Str("nats", node.ClientURL()).Str("routes", m.Config.ClusterListen).Strs("peers", m.Config.peers).
			Bool("secret", sec.Secret != "").Bool("tls", sec.CertFile != "").Msg("embedded NATS server started")
		if conn, err = node.Connect(ctx); err != nil {
			return err
		}
	} else {
		var opts []nats.Option
		if opts, err = sec.ClientOptions(); err != nil {
			return &ConfigError{Var: "NATS_CREDS", Err: err}
		}
		if conn, err = cluster.Connect(ctx, m.Config.NATSURL, opts...); err != nil {
			return err
		}
	}
	m.nats = conn
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	log.Info().Msg("waiting for the cluster (JetStream)")
	if err := conn.WaitReady(wctx); err != nil {
		return err
	}
	// A cluster that has just formed may refuse to create the bucket and
	// the stream for a moment (no leader yet): retried until clusterWait.
	for {
		// Each attempt on a deadline of its own (each request in it is
		// sent again after a few seconds with no answer: cluster.ensure).
		actx, acancel := context.WithTimeout(wctx, 45*time.Second)
		err = nil
		step := func(what string, open func() error) {
			if err == nil {
				t0 := time.Now()
				err = open()
				log.Debug().Err(err).Dur("took", time.Since(t0)).Msg(what)
			}
		}
		if m.records == nil {
			step("records' buckets", func() (err error) {
				m.records, err = conn.OpenRecords(actx, m.Config.ClusterReplicas, m.Config.Node)
				return err
			})
		}
		if m.clog == nil {
			step("change log's streams", func() (err error) {
				m.clog, err = conn.OpenLog(actx, m.Config.ClusterReplicas, int64(m.Config.LogRetention))
				return err
			})
		}
		if m.webhooks == nil {
			step("webhooks' buckets", func() (err error) {
				m.webhooks, err = conn.OpenWebhooks(actx, m.Config.ClusterReplicas, m.Config.Node, m.clog)
				return err
			})
		}
		if m.fwdStore == nil {
			step("forwards' bucket", func() (err error) {
				m.fwdStore, err = conn.OpenForwards(actx, m.Config.ClusterReplicas)
				return err
			})
		}
		if m.nodes == nil {
			step("nodes' bucket", func() (err error) {
				m.nodes, err = conn.OpenNodes(actx, m.Config.ClusterReplicas)
				return err
			})
		}
		// The stream may exist before its leader answers reads: the hub's
		// first read must not fail the start.
		step("change log's first read", func() error {
			_, _, _, err := m.clog.JournalState(actx)
			return err
		})
		acancel()
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			return fmt.Errorf("opening the cluster's store: %w", err)
		}
		log.Info().Err(err).Msg("the cluster's store is not ready yet; trying again")
		time.Sleep(200 * time.Millisecond)
	}
	log.Info().Str("node", m.Config.Node).Str("site", m.Config.Site).Int("replicas", m.Config.ClusterReplicas).Msg("cluster store open")
	return nil
}

// closeCluster takes this node off the list of nodes, closes the
// connection, then the embedded server.
func (m *Main) closeCluster() {
	if m.nodes != nil && m.nats.Connected() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = m.nodes.Leave(ctx, m.Config.Node)
		cancel()
	}
	if m.nats != nil {
		m.nats.Close()
	}
	if m.natsNode != nil {
		_ = m.natsNode.Close()
	}
}

// clusterView is what /readyz shows of the cluster.
type clusterView struct {
	Node string `json:"node"`
	Site string `json:"site,omitempty"`
	// NATS is the server this node is on ("" while cut off).
	NATS string `json:"nats"`
	// Log is the change log's state in the cluster (absent when it could
	// not be read); Lag how many of its changes this node has yet to read.
	Log   *cluster.LogStatus `json:"log,omitempty"`
	Lag   uint64             `json:"lag"`
	Error string             `json:"error,omitempty"`
	// Webhooks: the webhooks this node delivers.
	Webhooks []string `json:"webhooks"`
	// Nodes: every node of the cluster there now, as each last said of
	// itself (every few seconds), this one included.
	Nodes []cluster.NodeCard `json:"nodes"`
}

// card is what this node says of itself now; lag is read from the log
// (absent when it could not be read).
func (m *Main) card(ctx context.Context) (cluster.NodeCard, *cluster.LogStatus, error) {
	c := cluster.NodeCard{Node: m.Config.Node, Site: m.Config.Site, NATS: m.nats.ServerURL(), Webhooks: []string{},
		Version: buildVersion(), At: time.Now().UTC()}
	if m.hooksOut != nil {
		c.Webhooks = m.hooksOut.Delivering()
	}
	st, err := m.clog.Status(ctx)
	if err != nil {
		return c, nil, err
	}
	if read, _ := m.hub.Durable(); st.Last > read {
		c.Lag = st.Last - read
	}
	return c, &st, nil
}

// clusterStatus reads the cluster's state for /readyz.
func (m *Main) clusterStatus(ctx context.Context) any {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, st, err := m.card(ctx)
	v := clusterView{Node: c.Node, Site: c.Site, NATS: c.NATS, Webhooks: c.Webhooks, Log: st, Lag: c.Lag, Nodes: []cluster.NodeCard{}}
	if err == nil {
		v.Nodes, err = m.nodes.List(ctx)
	}
	if err != nil {
		v.Error = m.Config.redactor().String(err.Error())
	}
	return v
}

// announce puts this node's card in the cluster's list of nodes now and
// every cluster.NodeEvery, until ctx ends.
func (m *Main) announce(ctx context.Context) {
	t := time.NewTicker(cluster.NodeEvery)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, cluster.NodeEvery)
		c, _, _ := m.card(actx) // a card without its lag is still news
		if err := m.nodes.Announce(actx, c); err != nil && ctx.Err() == nil {
			m.Log.Debug().Str("component", "cluster").Err(err).Msg("cannot announce this node")
		}
		cancel()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
