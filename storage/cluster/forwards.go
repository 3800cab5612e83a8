package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presenced/presenced/core/forward"
)

// ForwardsBucket holds every user's call forwards, one key a user.
const ForwardsBucket = "presenced_forwards"

// Forwards keeps call forwards in a JetStream key-value bucket: every
// node's forward/get hook reads the same forwards. A change is written
// whole (the user's three forwards): two nodes changing one user's
// forwards at the same instant keep the later write.
type Forwards struct {
	kv   jetstream.KeyValue
	conn *Conn
}

var _ forward.Store = (*Forwards)(nil)

// OpenForwards opens (creating or updating) the forwards bucket.
func (c *Conn) OpenForwards(ctx context.Context, replicas int) (*Forwards, error) {
	kv, err := ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: ForwardsBucket, Description: "presenced: per-user call forwards",
			History: 1, Replicas: replicas, Storage: jetstream.FileStorage,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the forwards bucket: %w", err)
	}
	return &Forwards{kv: kv, conn: c}, nil
}

// SaveForwards writes a user's forwards (forward.Store).
func (f *Forwards) SaveForwards(ctx context.Context, fw forward.Forwards) error {
	if err := f.conn.connected(ctx); err != nil {
		return fmt.Errorf("cluster: saving the forwards of %s: %w", fw.User, err)
	}
	raw, err := json.Marshal(fw)
	if err != nil {
		return fmt.Errorf("cluster: encoding the forwards of %s: %w", fw.User, err)
	}
	err = retryEach(ctx, tryFor, func(ctx context.Context) error {
		_, err := f.kv.Put(ctx, key(fw.User), raw)
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: saving the forwards of %s: %w", fw.User, err)
	}
	return nil
}

// AllForwards returns every user's forwards (forward.Store).
func (f *Forwards) AllForwards(ctx context.Context) ([]forward.Forwards, error) {
	var out []forward.Forwards
	lister, err := f.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: listing forwards: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for k := range lister.Keys() {
		e, err := f.kv.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("cluster: reading forwards %q: %w", k, err)
		}
		if fw, ok := decodeForwards(e); ok {
			out = append(out, fw)
		}
	}
	return out, nil
}

func decodeForwards(e jetstream.KeyValueEntry) (forward.Forwards, bool) {
	user, err := userOf(e.Key())
	if err != nil {
		return forward.Forwards{}, false // not presenced's
	}
	var fw forward.Forwards
	if json.Unmarshal(e.Value(), &fw) != nil {
		return forward.Forwards{}, false
	}
	fw.User = user
	return fw, true
}

// Watch calls changed with every user's forwards as any node saves them
// (the latest of each first), until ctx ends.
func (f *Forwards) Watch(ctx context.Context, changed func(forward.Forwards)) error {
	return watchAll(ctx, f.kv, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			return
		}
		if fw, ok := decodeForwards(e); ok {
			changed(fw)
		}
	})
}
