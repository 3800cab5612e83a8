package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a connection to NATS with JetStream.
type Conn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu          sync.Mutex
	reconnected chan struct{} // closed at the next reconnect, then replaced
}

// Connect connects to NATS at url (one or more, comma-separated), and
// reconnects for ever when a server goes away: a node cut off from NATS
// is told by its errors (UNAVAILABLE), not by a closed connection.
//
// A server that stops answering without closing the connection (stopped,
// or a link that went silent) is given up after pingEvery times
// pingsMissed: nats.go's default, two minutes, kept a node on a dead
// server for that long when the others it lists were up.
func Connect(ctx context.Context, url string, opts ...nats.Option) (*Conn, error) {
	c := &Conn{reconnected: make(chan struct{})}
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.Name("presenced"),
		nats.PingInterval(pingEvery), nats.MaxPingsOutstanding(pingsMissed),
		nats.ReconnectHandler(func(*nats.Conn) { c.reconnect() })}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: JetStream: %w", err)
	}
	c.nc, c.js = nc, js
	return c, nil
}

// A connection is given up when pingsMissed pings in a row, one every
// pingEvery, had no answer.
const (
	pingEvery   = time.Second
	pingsMissed = 3
)

func (c *Conn) reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.reconnected)
	c.reconnected = make(chan struct{})
}

// Reconnected returns a channel closed when the connection is next made
// again (after its server went away, or the node was cut off).
func (c *Conn) Reconnected() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnected
}

// WaitReady waits until JetStream answers (in a cluster: once its nodes
// have elected a leader).
func (c *Conn) WaitReady(ctx context.Context) error {
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: JetStream not ready: %w", errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaderGet reads the last message of a subject from the stream's leader
// (STREAM.MSG.GET, not the direct get any replica may answer). found is
// false when there is none, or the last is a key-value delete marker.
func (c *Conn) leaderGet(ctx context.Context, stream, subject string) (data []byte, seq uint64, found bool, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, 0, false, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, false, fmt.Errorf("reading JetStream's answer: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound) {
			return nil, 0, false, nil
		}
		return nil, 0, false, fmt.Errorf("JetStream: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, 0, false, errors.New("JetStream answered without a message")
	}
	if len(resp.Message.Hdrs) > 0 {
		if h, err := nats.DecodeHeadersMsg(resp.Message.Hdrs); err == nil {
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				return nil, resp.Message.Seq, false, nil
			}
		}
	}
	return resp.Message.Data, resp.Message.Seq, true, nil
}

// ErrCutOff: this node is not connected to NATS.
var ErrCutOff = errors.New("cluster: not connected to NATS")

// reconnectWait is how long an operation waits for a connection that is
// down: a node whose NATS server died moves to another within a second;
// one cut off answers UNAVAILABLE after this, rather than hold a hook
// until its caller gives up (requests made while disconnected are
// buffered and wait for their deadline).
const reconnectWait = 2 * time.Second

// connected returns nil once the connection is up, ErrCutOff when it is
// still down after reconnectWait.
func (c *Conn) connected(ctx context.Context) error {
	deadline := time.Now().Add(reconnectWait)
	for !c.nc.IsConnected() {
		if c.nc.IsClosed() || time.Now().After(deadline) {
			return ErrCutOff
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Connected reports whether the connection is up (for /readyz).
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// ServerURL is the NATS server this connection is on ("" when none),
// without credentials.
func (c *Conn) ServerURL() string { return c.nc.ConnectedUrlRedacted() }

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }
