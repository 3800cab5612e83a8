package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/presenced/presenced/core/forward"
)

// bucketForwards holds each user's call forwards, as JSON, by user.
var bucketForwards = []byte("forwards")

var _ forward.Store = (*DB)(nil)

// SaveForwards stores a user's forwards and returns once they are on
// disk. Forwards change seldom: a commit of their own, not the group
// committer's.
func (d *DB) SaveForwards(_ context.Context, f forward.Forwards) error {
	raw, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding the forwards of %s: %w", f.User, err)
	}
	err = d.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketForwards)
		if err != nil {
			return err
		}
		return b.Put([]byte(f.User), raw)
	})
	if err != nil {
		return fmt.Errorf("writing the forwards of %s: %w", f.User, err)
	}
	return nil
}

// AllForwards returns every user's stored forwards.
func (d *DB) AllForwards(_ context.Context) ([]forward.Forwards, error) {
	var out []forward.Forwards
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketForwards)
		if b == nil {
			return nil // a data file from before forwards
		}
		return b.ForEach(func(k, v []byte) error {
			var f forward.Forwards
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("forwards of %q: %w", k, err)
			}
			f.User = string(k)
			out = append(out, f)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading call forwards: %w", err)
	}
	return out, nil
}
