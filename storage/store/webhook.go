package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The webhook store (webhook.Store, asserted in cmd/presenced so that the
// two sibling packages need not import each other). The values are opaque
// here: the webhook package encodes them. The buckets: changelog.go.

// Webhooks returns every subscription's configuration and cursor.
func (d *DB) Webhooks(_ context.Context) (configs map[string][]byte, cursors map[string]uint64, err error) {
	configs, cursors = map[string][]byte{}, map[string]uint64{}
	err = d.view(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketWebhooks).ForEach(func(k, v []byte) error {
			configs[string(k)] = append([]byte(nil), v...)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
			cursors[string(k)] = readU64(v)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading webhook subscriptions: %w", err)
	}
	return configs, cursors, nil
}

// PutWebhook stores a subscription's configuration.
func (d *DB) PutWebhook(_ context.Context, id string, config []byte) error {
	err := d.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWebhooks).Put([]byte(id), config)
	})
	if err != nil {
		return fmt.Errorf("storing webhook %s: %w", id, err)
	}
	return nil
}

// DeleteWebhook removes a subscription and its cursor.
func (d *DB) DeleteWebhook(_ context.Context, id string) error {
	err := d.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketWebhooks).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bucketCursors).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("deleting webhook %s: %w", id, err)
	}
	return nil
}

// SetWebhookCursors stores the cursors of subscriptions that still exist
// (a cursor of one deleted meanwhile is not brought back).
func (d *DB) SetWebhookCursors(_ context.Context, cursors map[string]uint64) error {
	err := d.update(func(tx *bolt.Tx) error {
		subs, b := tx.Bucket(bucketWebhooks), tx.Bucket(bucketCursors)
		for id, seq := range cursors {
			if subs.Get([]byte(id)) == nil {
				continue
			}
			if err := b.Put([]byte(id), u64(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing webhook cursors: %w", err)
	}
	return nil
}
