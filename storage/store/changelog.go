package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/presenced/presenced/changelog/change"
	bolt "go.etcd.io/bbolt"
)

// The change log (watch.Log), and the buckets it shares the store with,
// webhooks' (webhook.go). The buckets keep the names the change log had
// when it was called the journal.
//
//	webhooks/<id>          a subscription's configuration
//	webhook_cursors/<id>   8 bytes, big-endian: the last journal sequence delivered
//	journal/<seq>          8-byte big-endian key; value uvarint(len key) key value
//	journal_latest/<key>   8-byte seq, then the value: each key's latest entry among those trimmed
//	                       (with the entries still in journal/ on top, each key's latest entry)
//	journal_meta/head      the last sequence number given out
//	journal_meta/floor     every sequence up to floor is gone from journal/
//	journal_meta/log_id    the change log's identity (watch ids are "<log_id>:<seq>")
//	journal_meta/log_open  present while a run has the log open
//
// The buckets were added to schema 1 without a version change: a store
// without them is a store without webhooks, and they are created on open.

var (
	bucketWebhooks = []byte("webhooks")
	bucketCursors  = []byte("webhook_cursors")
	bucketJournal  = []byte("journal")
	bucketLatest   = []byte("journal_latest")
	bucketJMeta    = []byte("journal_meta")
	keyHead        = []byte("head")
	keyFloor       = []byte("floor")
)

var webhookBuckets = [][]byte{bucketWebhooks, bucketCursors, bucketJournal, bucketLatest, bucketJMeta}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func readU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// AppendLog appends entries numbered after the head, keeps them in
// the journal and makes each its key's latest. It shares the commits of
// record saves (see commit.go).
func (d *DB) AppendLog(ctx context.Context, entries []change.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := d.commit(ctx, saveReq{journal: entries, done: make(chan error, 1)}); err != nil {
		return fmt.Errorf("appending to the change log: %w", err)
	}
	return nil
}

// appendLog puts the entries in the journal only: a key's latest entry
// is the latest of the journal, or, once trimmed, kept in journal_latest
// (TrimLog folds it in), so an append costs one sequential put per
// entry.
func appendLog(tx *bolt.Tx, entries []change.Entry) error {
	meta, j := tx.Bucket(bucketJMeta), tx.Bucket(bucketJournal)
	j.FillPercent = 1 // keys only grow: full pages
	head := readU64(meta.Get(keyHead))
	for _, e := range entries {
		if e.Seq != head+1 {
			return fmt.Errorf("journal entry %d does not follow the head %d", e.Seq, head)
		}
		head = e.Seq
		v := make([]byte, 0, binary.MaxVarintLen64+len(e.Key)+len(e.Value))
		v = binary.AppendUvarint(v, uint64(len(e.Key)))
		v = append(append(v, e.Key...), e.Value...)
		if err := j.Put(u64(e.Seq), v); err != nil {
			return err
		}
	}
	return meta.Put(keyHead, u64(head))
}

// logEntry decodes a journal/ value.
func logEntry(k, v []byte) (change.Entry, error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return change.Entry{}, fmt.Errorf("journal entry %d is cut", readU64(k))
	}
	return change.Entry{Seq: readU64(k), Key: string(v[w : w+int(n)]), Value: append([]byte(nil), v[w+int(n):]...)}, nil
}

// LogState returns the head, the floor and every key's latest entry: the
// journal's, newest first, then those of keys trimmed from it. The
// journal is read from its end, so that an entry a later one of its key
// replaced is skipped, not copied (a full log holds many changes of each
// key, and this is read at every start).
func (d *DB) LogState(_ context.Context) (head, floor uint64, latest []change.Entry, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketJMeta)
		head, floor = readU64(meta.Get(keyHead)), readU64(meta.Get(keyFloor))
		seen := map[string]struct{}{}
		c := tx.Bucket(bucketJournal).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			n, w := binary.Uvarint(v)
			if w <= 0 || uint64(len(v)-w) < n {
				return fmt.Errorf("journal entry %d is cut", readU64(k))
			}
			if _, ok := seen[string(v[w:w+int(n)])]; ok {
				continue
			}
			e, err := logEntry(k, v)
			if err != nil {
				return err
			}
			seen[e.Key] = struct{}{}
			latest = append(latest, e)
		}
		return tx.Bucket(bucketLatest).ForEach(func(k, v []byte) error {
			if len(v) < 8 {
				return fmt.Errorf("latest entry of %q is cut", k)
			}
			if _, ok := seen[string(k)]; !ok {
				latest = append(latest, change.Entry{Seq: readU64(v[:8]), Key: string(k), Value: append([]byte(nil), v[8:]...)})
			}
			return nil
		})
	})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("reading the webhook journal: %w", err)
	}
	return head, floor, latest, nil
}

// LogFloor returns the number up to which entries were trimmed,
// without reading the journal (LogState reads all of it).
func (d *DB) LogFloor(_ context.Context) (floor uint64, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		floor = readU64(tx.Bucket(bucketJMeta).Get(keyFloor))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading the change log: %w", err)
	}
	return floor, nil
}

// ReadLog returns up to limit entries after seq, in order.
func (d *DB) ReadLog(_ context.Context, after uint64, limit int) ([]change.Entry, error) {
	var out []change.Entry
	err := d.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournal).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			e, err := logEntry(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the webhook journal after %d: %w", after, err)
	}
	return out, nil
}

// TrimLog removes the entries up to seq and raises the floor to it.
func (d *DB) TrimLog(_ context.Context, upto uint64) error {
	err := d.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketJMeta)
		if upto <= readU64(meta.Get(keyFloor)) {
			return nil
		}
		if upto > readU64(meta.Get(keyHead)) {
			return errors.New("trimming past the head")
		}
		// The entries trimmed are folded into journal_latest first (in
		// order, so each key keeps its latest).
		latest := tx.Bucket(bucketLatest)
		c := tx.Bucket(bucketJournal).Cursor()
		for k, v := c.First(); k != nil && readU64(k) <= upto; k, v = c.First() {
			e, err := logEntry(k, v)
			if err != nil {
				return err
			}
			if err := latest.Put([]byte(e.Key), append(u64(e.Seq), e.Value...)); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return meta.Put(keyFloor, u64(upto))
	})
	if err != nil {
		return fmt.Errorf("trimming the webhook journal to %d: %w", upto, err)
	}
	return nil
}

var (
	keyLogID   = []byte("log_id")
	keyLogOpen = []byte("log_open")
)

// OpenLog returns the change log's identity and marks the log open. The
// identity is made when the store is, and made anew when the last run did
// not close the log (a crash, kill -9): ids it gave out then but had not
// written are given out again, so ids of the earlier identity cannot be
// resumed from (watch.Log).
func (d *DB) OpenLog(_ context.Context) (id string, err error) {
	err = d.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketJMeta)
		id = string(meta.Get(keyLogID))
		if id == "" || meta.Get(keyLogOpen) != nil {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			id = hex.EncodeToString(b[:])
			if err := meta.Put(keyLogID, []byte(id)); err != nil {
				return err
			}
		}
		return meta.Put(keyLogOpen, []byte{1})
	})
	if err != nil {
		return "", fmt.Errorf("opening the change log: %w", err)
	}
	return id, nil
}

// CloseLog marks the log closed: every id given out was written.
func (d *DB) CloseLog(_ context.Context) error {
	err := d.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketJMeta).Delete(keyLogOpen) })
	if err != nil {
		return fmt.Errorf("closing the change log: %w", err)
	}
	return nil
}
