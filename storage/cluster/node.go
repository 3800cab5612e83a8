// Package cluster is presenced's clustered store: the interfaces the core
// declares (presence records first; the change log, webhook cursors and
// leases next), on NATS JetStream, replicated by RAFT across nodes.
// Each presenced either embeds a nats-server that joins its peers (Node)
// or connects to an existing NATS cluster (Connect).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// NodeConfig configures an embedded NATS server.
type NodeConfig struct {
	// Name is the server's name, unique in the cluster.
	Name string
	// Listen is the client address ("127.0.0.1:4222"; port 0: any free
	// one): presenced connects to its own server there; other clients may
	// too.
	Listen string
	// ClusterListen is the route address other nodes connect to
	// ("0.0.0.0:6222"); empty for a node of its own.
	ClusterListen string
	// Peers are the other nodes' route addresses ("10.0.0.2:6222").
	Peers []string
	// ClusterName names the cluster (default "presenced").
	ClusterName string
	// DataDir holds JetStream's files.
	DataDir string
	// Log gets the server's own messages: notices at info, warnings and
	// errors as such, debug and trace at debug and trace.
	Log zerolog.Logger
	// Security: the shared secret and TLS of routes and the client port
	// (security.go). Empty: open, which only a cluster on loopback may be
	// (cmd/presenced refuses the rest).
	Security Security
	// MaxStore bounds JetStream's disk use (default 1 GiB), MaxMemory its
	// memory streams (default 64 MiB): JetStream otherwise reserves a
	// share of the whole machine.
	MaxStore, MaxMemory int64
}

// Node is an embedded NATS server with JetStream.
type Node struct {
	srv *server.Server
	sec Security
}

func splitHostPort(what, addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q is not host:port: %w", what, addr, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: the port must be a number from 0 to 65535", what, addr)
	}
	return host, int(n), nil
}

// anyPort: port 0 asks for any free port, which nats-server spells -1
// (its 0 is the default port, 4222 or 6222).
func anyPort(p int) int {
	if p == 0 {
		return -1
	}
	return p
}

// StartNode starts an embedded NATS server and waits until it takes
// connections. JetStream's own readiness (a meta leader, in a cluster) is
// Conn.WaitReady's.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Name == "" || cfg.DataDir == "" {
		return nil, errors.New("cluster: a node needs a name and a data directory")
	}
	host, port, err := splitHostPort("client listen address", cfg.Listen)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Name, Host: host, Port: anyPort(port),
		JetStream: true, StoreDir: cfg.DataDir,
		JetStreamMaxStore: cfg.MaxStore, JetStreamMaxMemory: cfg.MaxMemory,
		// presenced handles signals itself.
		NoSigs: true, Debug: cfg.Log.GetLevel() <= zerolog.DebugLevel, Trace: cfg.Log.GetLevel() <= zerolog.TraceLevel,
	}
	if opts.JetStreamMaxStore == 0 {
		opts.JetStreamMaxStore = 1 << 30
	}
	if opts.JetStreamMaxMemory == 0 {
		opts.JetStreamMaxMemory = 64 << 20
	}
	sec := cfg.Security
	if sec.Secret != "" {
		opts.Username, opts.Password = clientUser, sec.Secret
	}
	if sec.CertFile != "" {
		if opts.TLSConfig, err = sec.serverTLS(false); err != nil {
			return nil, err
		}
		opts.TLSTimeout = 5
	}
	if cfg.ClusterListen != "" {
		chost, cport, err := splitHostPort("cluster listen address", cfg.ClusterListen)
		if err != nil {
			return nil, err
		}
		name := cfg.ClusterName
		if name == "" {
			name = "presenced"
		}
		opts.Cluster = server.ClusterOpts{Name: name, Host: chost, Port: anyPort(cport)}
		if sec.Secret != "" {
			opts.Cluster.Username, opts.Cluster.Password = routeUser, sec.Secret
		}
		if sec.CertFile != "" {
			if opts.Cluster.TLSConfig, err = sec.serverTLS(true); err != nil {
				return nil, err
			}
			opts.Cluster.TLSTimeout = 5
		}
		for _, p := range cfg.Peers {
			if _, _, err := splitHostPort("peer", p); err != nil {
				return nil, err
			}
			opts.Routes = append(opts.Routes, sec.routeURL(p))
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: configuring the NATS server: %w", err)
	}
	srv.SetLoggerV2(natsLog{cfg.Log}, opts.Debug, opts.Trace, false)
	go srv.Start()
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !srv.ReadyForConnections(deadline) {
		srv.Shutdown()
		return nil, fmt.Errorf("cluster: the NATS server did not start listening on %s", cfg.Listen)
	}
	return &Node{srv: srv, sec: sec}, nil
}

// natsLog writes the NATS server's messages to presenced's log.
type natsLog struct{ l zerolog.Logger }

func (n natsLog) Noticef(format string, v ...any) { n.l.Info().Msgf(format, v...) }
func (n natsLog) Warnf(format string, v ...any)   { n.l.Warn().Msgf(format, v...) }
func (n natsLog) Fatalf(format string, v ...any)  { n.l.Error().Msgf(format, v...) }
func (n natsLog) Errorf(format string, v ...any)  { n.l.Error().Msgf(format, v...) }
func (n natsLog) Debugf(format string, v ...any)  { n.l.Debug().Msgf(format, v...) }
func (n natsLog) Tracef(format string, v ...any)  { n.l.Trace().Msgf(format, v...) }

// ClientURL is where other clients connect ("tls://" when the client port
// has TLS).
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// Connect connects presenced to its own server, in process (no socket,
// no TLS to check), with the cluster's credentials.
func (n *Node) Connect(ctx context.Context) (*Conn, error) {
	opts := []nats.Option{nats.InProcessServer(n.srv)}
	if n.sec.Secret != "" {
		opts = append(opts, nats.UserInfo(clientUser, n.sec.Secret))
	}
	return Connect(ctx, "nats://"+n.srv.Addr().String(), opts...)
}

// RouteAddr is the address the server takes routes on ("" without).
func (n *Node) RouteAddr() string {
	if a := n.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// NumRoutes is the number of routes to other servers (tests).
func (n *Node) NumRoutes() int { return n.srv.NumRoutes() }

// Close stops the server and waits until it has.
func (n *Node) Close() error {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	return nil
}
