package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a connection to NATS with JetStream.
type Conn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// Connect connects to NATS at url (one or more, comma-separated), and
// reconnects for ever when a server goes away: a node cut off from NATS
// is told by its errors (UNAVAILABLE), not by a closed connection.
func Connect(ctx context.Context, url string, opts ...nats.Option) (*Conn, error) {
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.Name("presenced")}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: JetStream: %w", err)
	}
	return &Conn{nc: nc, js: js}, nil
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

// Connected reports whether the connection is up (for /readyz).
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }
