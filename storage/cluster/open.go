package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Config is what makes presenced a node of a cluster: an embedded NATS
// server joining its peers (ClusterListen), or a connection to an existing
// NATS (URL); then the stores, with Replicas copies.
type Config struct {
	Node, Site string
	// An embedded server: its client address (Listen), its routes'
	// (ClusterListen), the peers' routes, and where JetStream keeps its
	// files.
	Listen, ClusterListen string
	Peers                 []string
	DataDir               string
	// URL is an existing NATS, when there is no embedded server.
	URL      string
	Security Security
	Replicas int
	// Retention is how many changes the change log keeps.
	Retention int64
	// Wait bounds how long Open waits for the cluster (JetStream's leader,
	// the buckets and the stream): default 2 minutes.
	Wait time.Duration
	// Log is the cluster's log; NATSLog the embedded server's.
	Log, NATSLog zerolog.Logger
}

// A ServerError is the embedded server's failure to start (a port in
// use, a certificate that cannot be read); a CredentialsError is about
// the credentials for an existing NATS.
type (
	ServerError      struct{ Err error }
	CredentialsError struct{ Err error }
)

func (e *ServerError) Error() string      { return e.Err.Error() }
func (e *ServerError) Unwrap() error      { return e.Err }
func (e *CredentialsError) Error() string { return e.Err.Error() }
func (e *CredentialsError) Unwrap() error { return e.Err }

// Cluster is a node's hold on the cluster: its connection, its embedded
// server (if any) and the stores.
//
// What is clustered: presence records (an operation holds the user's
// lease and starts from the cluster's record, saved by compare-and-set;
// every node follows them, so timers fire once, on any node, and each
// site's Asterisk is brought to hold the presence), the change log (one
// numbering for every node: a watcher resumes on any node), webhooks (one
// node at a time delivers each), call forwards, and the list of nodes.
type Cluster struct {
	cfg      Config
	Server   *Node // nil with an existing NATS
	Conn     *Conn
	Records  *Records
	Log      *Log
	Webhooks *Webhooks
	Forwards *Forwards
	Nodes    *Nodes
	health   Health
}

// Open joins the cluster and opens its stores. A cluster that has just
// formed may refuse to create the buckets and the stream for a moment (no
// leader yet): tried again until Config.Wait. On an error, what was
// opened is closed.
func Open(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Minute
	}
	c := &Cluster{cfg: cfg, health: Health{lastOK: time.Now()}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	log, sec := cfg.Log, cfg.Security
	if cfg.ClusterListen != "" {
		c.Server, err = StartNode(ctx, NodeConfig{Name: cfg.Node, Listen: cfg.Listen, ClusterListen: cfg.ClusterListen,
			Peers: cfg.Peers, DataDir: cfg.DataDir, Security: sec, Log: cfg.NATSLog})
		if err != nil {
			return nil, &ServerError{err}
		}
		log.Info().Str("nats", c.Server.ClientURL()).Str("routes", cfg.ClusterListen).Strs("peers", cfg.Peers).
			Bool("secret", sec.Secret != "").Bool("tls", sec.CertFile != "").Msg("embedded NATS server started")
		if c.Conn, err = c.Server.Connect(ctx); err != nil {
			return nil, err
		}
	} else {
		var opts []nats.Option
		if opts, err = sec.ClientOptions(); err != nil {
			return nil, &CredentialsError{err}
		}
		if c.Conn, err = Connect(ctx, cfg.URL, opts...); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.Wait)
	defer cancel()
	log.Info().Msg("waiting for the cluster (JetStream)")
	if err := c.Conn.WaitReady(wctx); err != nil {
		return nil, err
	}
	for {
		err := c.openStores(wctx)
		if err == nil {
			break
		}
		if wctx.Err() != nil {
			return nil, fmt.Errorf("opening the cluster's store: %w", err)
		}
		log.Info().Err(err).Msg("the cluster's store is not ready yet; trying again")
		select {
		case <-time.After(200 * time.Millisecond):
		case <-wctx.Done():
		}
	}
	log.Info().Str("node", cfg.Node).Str("site", cfg.Site).Int("replicas", cfg.Replicas).Msg("cluster store open")
	return c, nil
}

// openStores makes one attempt at opening what is not open yet, on a
// deadline of its own (each request in it is sent again after a few
// seconds with no answer: ensure).
func (c *Cluster) openStores(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	var err error
	step := func(what string, open func() error) {
		if err == nil {
			t0 := time.Now()
			err = open()
			c.cfg.Log.Debug().Err(err).Dur("took", time.Since(t0)).Msg(what)
		}
	}
	n := c.cfg.Replicas
	if c.Records == nil {
		step("records' buckets", func() (err error) { c.Records, err = c.Conn.OpenRecords(ctx, n, c.cfg.Node); return err })
	}
	if c.Log == nil {
		step("change log's streams", func() (err error) { c.Log, err = c.Conn.OpenLog(ctx, n, c.cfg.Retention); return err })
	}
	if c.Webhooks == nil {
		step("webhooks' buckets", func() (err error) {
			c.Webhooks, err = c.Conn.OpenWebhooks(ctx, n, c.cfg.Node, c.Log)
			return err
		})
	}
	if c.Forwards == nil {
		step("forwards' bucket", func() (err error) { c.Forwards, err = c.Conn.OpenForwards(ctx, n); return err })
	}
	if c.Nodes == nil {
		step("nodes' bucket", func() (err error) { c.Nodes, err = c.Conn.OpenNodes(ctx, n); return err })
	}
	// The stream may exist before its leader answers reads: the hub's
	// first read must not fail the start.
	step("change log's first read", func() error {
		_, _, _, err := c.Log.LogState(ctx)
		return err
	})
	return err
}

// Close takes this node off the list of nodes, closes the connection,
// then the embedded server. It may be called on a partly opened cluster.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	if c.Nodes != nil && c.Conn.Connected() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = c.Nodes.Leave(ctx, c.cfg.Node)
		cancel()
	}
	if c.Conn != nil {
		c.Conn.Close()
	}
	if c.Server != nil {
		_ = c.Server.Close()
	}
}

// Self is what a node tells of itself besides what the cluster knows.
type Self struct {
	Version string
	// Read is the last number of the change log this node has read.
	Read func() uint64
	// Delivering lists the webhooks this node delivers.
	Delivering func() []string
}

// Card is what this node says of itself now; the log's state is nil when
// it could not be read (the card then has no lag).
func (c *Cluster) Card(ctx context.Context, self Self) (NodeCard, *LogStatus, error) {
	card := NodeCard{Node: c.cfg.Node, Site: c.cfg.Site, NATS: c.Conn.ServerURL(), Webhooks: []string{},
		Version: self.Version, At: time.Now().UTC()}
	if self.Delivering != nil {
		card.Webhooks = self.Delivering()
	}
	st, err := c.Log.Status(ctx)
	if err != nil {
		return card, nil, err
	}
	if read := self.Read(); st.Last > read {
		card.Lag = st.Last - read
	}
	return card, &st, nil
}

// Announce puts this node's card in the cluster's list of nodes now and
// every NodeEvery, until ctx ends.
func (c *Cluster) Announce(ctx context.Context, self Self) {
	t := time.NewTicker(NodeEvery)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, NodeEvery)
		card, _, _ := c.Card(actx, self) // a card without its lag is still news
		if err := c.Nodes.Announce(actx, card); err != nil && ctx.Err() == nil {
			c.cfg.Log.Debug().Err(err).Msg("cannot announce this node")
		}
		cancel()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Status is what /readyz shows of the cluster.
type Status struct {
	Node string `json:"node"`
	Site string `json:"site,omitempty"`
	// NATS is the server this node is on ("" while cut off).
	NATS string `json:"nats"`
	// Log is the change log's state in the cluster (absent when it could
	// not be read); Lag how many of its changes this node has yet to read.
	Log   *LogStatus `json:"log,omitempty"`
	Lag   uint64     `json:"lag"`
	Error string     `json:"error,omitempty"`
	// Webhooks: the webhooks this node delivers.
	Webhooks []string `json:"webhooks"`
	// Nodes: every node of the cluster there now, as each last said of
	// itself (every few seconds), this one included.
	Nodes []NodeCard `json:"nodes"`
}

// Status reads the cluster's state (within 2 s); redact cleans the text
// of an error (it may quote URLs with credentials). A node cut off
// (Cut) does not try: /readyz answers at once.
func (c *Cluster) Status(ctx context.Context, self Self, redact func(string) string) Status {
	if _, why := c.Cut(time.Now()); why != "" {
		v := Status{Node: c.cfg.Node, Site: c.cfg.Site, NATS: c.Conn.ServerURL(), Webhooks: []string{}, Nodes: []NodeCard{}, Error: redact(why)}
		if self.Delivering != nil {
			v.Webhooks = self.Delivering()
		}
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	card, st, err := c.Card(ctx, self)
	v := Status{Node: card.Node, Site: card.Site, NATS: card.NATS, Webhooks: card.Webhooks, Log: st, Lag: card.Lag, Nodes: []NodeCard{}}
	if err == nil {
		v.Nodes, err = c.Nodes.List(ctx)
	}
	if err != nil {
		v.Error = redact(err.Error())
	}
	return v
}

var errNoCluster = errors.New("cluster: not open")

// Lag returns how many changes of the cluster's log this node has yet to
// read (within 2 s).
func (c *Cluster) Lag(self Self) (uint64, error) {
	if c == nil || c.Log == nil {
		return 0, errNoCluster
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.Log.Status(ctx)
	if err != nil {
		return 0, err
	}
	read := self.Read()
	return st.Last - min(read, st.Last), nil
}

// NodeCount returns how many nodes are there now (within 2 s).
func (c *Cluster) NodeCount() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cards, err := c.Nodes.List(ctx)
	return len(cards), err
}
