package presence

import (
	"context"
	"time"
)

// Client is the service as the doors without a channel use it (the HTTP
// API, phone apps): writes go through the Background writer (AMI) and wait
// for Asterisk (pending) while it is away; reads are, in a cluster, the
// record as the cluster last saved it (another node may have changed it).
type Client struct{ s *Service }

// Client returns the service for the doors without a channel.
func (s *Service) Client() Client { return Client{s} }

// clientReadTimeout bounds a cluster read of Get.
const clientReadTimeout = 5 * time.Second

// Get returns a user's presence and whether presenced knows the user.
func (c Client) Get(user string) (Value, bool) {
	if c.s.cfg.Shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), clientReadTimeout)
		defer cancel()
		if rec, _, ok, err := c.s.cfg.Shared.Load(ctx, user); err == nil {
			return rec.Current, ok
		}
		// The cluster away: what this node knows.
	}
	v, _, ok := c.s.Lookup(user)
	return v, ok
}

// Set sets a user's presence; pending: it waits for Asterisk.
func (c Client) Set(ctx context.Context, user string, v Value) (got Value, pending bool, err error) {
	got, err = c.s.Set(ctx, nil, user, v)
	_, pending, _ = c.s.Lookup(user)
	return got, pending, err
}

// Restore returns a user to the presence before; pending as for Set.
func (c Client) Restore(ctx context.Context, user string) (got Value, pending bool, err error) {
	got, err = c.s.Restore(ctx, nil, user)
	_, pending, _ = c.s.Lookup(user)
	return got, pending, err
}
