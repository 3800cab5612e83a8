// Package store is presenced's durable state: one bbolt file under the data
// directory. It implements the stores that the core packages declare
// (presence.Store): last known presence per user, the restore memory and
// timed presence (inside each user's record), and writes still waiting for
// Asterisk (the record's pending flag).
//
// Layout (schema version 1):
//
//	meta/schema        "1"
//	users/<user>       presence.Record in the binary form of record.go
//
// and the webhook subscriptions and the change log (watch.Log) of webhook.go.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/presenced/presenced/core/presence"
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 1

// FileName is the store's file inside the data directory.
const FileName = "presenced.db"

var (
	bucketMeta  = []byte("meta")
	bucketUsers = []byte("users")
	keySchema   = []byte("schema")
)

// DB is the bbolt store.
type DB struct {
	bolt *bolt.DB
	path string

	saves     chan saveReq
	quit      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

var _ presence.Store = (*DB)(nil)

// lockTimeout is how long Open waits for another process's lock on the file.
const lockTimeout = 2 * time.Second

// Open opens (creating if needed) the store in dir. A file locked by another
// process, a corrupt file, or one written by a newer schema is a clear error.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	// bbolt takes an empty file for a new store and writes one: but an
	// empty presenced.db is what a full disk or a bad copy leaves, not a
	// store, and starting empty over it would forget every user quietly.
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("data file %s is empty (0 bytes), not a presenced store; move it away to start empty", path)
	}
	b, err := openBolt(path)
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("data file %s is locked by another process (is another presenced running on this data directory?)", path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, fmt.Errorf("data file %s is corrupt or not a presenced store (%w); move it away to start empty", path, err)
	case err != nil:
		return nil, fmt.Errorf("opening data file %s: %w", path, err)
	}
	d := &DB{bolt: b, path: path, saves: make(chan saveReq), quit: make(chan struct{}), stopped: make(chan struct{})}
	if err := d.check(); err != nil {
		_ = b.Close()
		return nil, err
	}
	if err := d.migrate(); err != nil {
		_ = b.Close()
		return nil, err
	}
	go d.commitLoop()
	return d, nil
}

// openBolt is bolt.Open with its panics (a corrupt freelist page panics
// while the file is opened) turned into ErrInvalid.
func openBolt(path string) (b *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("%w: %v", bolterrors.ErrInvalid, p)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
}

// check reads every key and value of every bucket once at start, which
// visits every page in use, so that a corrupt page stops presenced at start
// with a clear message rather than in the middle of a hook. (bbolt's own
// Tx.Check is not used: it walks in a goroutine of its own, where a fault
// on a corrupt page id cannot be recovered; see view.) It costs a read of
// the file.
func (d *DB) check() error {
	var walk func(b *bolt.Bucket, depth int) error
	walk = func(b *bolt.Bucket, depth int) error {
		if depth > 8 {
			return errors.New("buckets nested deeper than presenced writes them")
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				child := b.Bucket(k)
				if child == nil {
					return fmt.Errorf("key %q has neither a value nor a bucket", k)
				}
				if err := walk(child, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := d.view(func(tx *bolt.Tx) error {
		if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b, 0) }); err != nil {
			return err
		}
		return d.checkFreelist(tx)
	})
	if err != nil {
		return fmt.Errorf("data file %s is corrupt (%w); move it away to start empty, or restore a backup", d.path, err)
	}
	return nil
}

// checkFreelist checks that every page the free page list names is in
// the file, once. bbolt takes the list as it is: a page id beyond the
// file's end is found only when a write is given that page, and the file
// grows to it (a gigabyte, sparse, for one bad id); a page named twice is
// given to two writes. The list's pages are counted (its length, from
// bbolt's statistics) against the pages of the file it marks free.
func (d *DB) checkFreelist(tx *bolt.Tx) error {
	st := d.bolt.Stats()
	listed := st.FreePageN + st.PendingPageN
	inFile := 0
	for id := 2; ; id++ {
		info, err := tx.Page(id)
		if err != nil {
			return fmt.Errorf("reading page %d: %w", id, err)
		}
		if info == nil {
			break // the end of the file's pages
		}
		if info.Type == "free" {
			inFile++
		}
	}
	if listed != inFile {
		return fmt.Errorf("the free page list names %d pages, %d of them once in the file", listed, inFile)
	}
	return nil
}

// view and update are bbolt's View and Update with a panic, which is how
// bbolt reports a corrupt page it meets, turned into an error. bbolt also
// follows page ids from a corrupt page without checking them against the
// file (even in Check: common.Page.FastCheck dereferences first), which
// faults on an address outside the mapping and kills the process with
// "fatal error: fault"; SetPanicOnFault, for this goroutine and the length
// of the call, turns that fault into a panic recovered here as well.
func (d *DB) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(d.path, &err)
	return d.bolt.View(fn)
}

func (d *DB) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(d.path, &err)
	return d.bolt.Update(fn)
}

func recoverCorrupt(path string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("data file %s is corrupt: %v", path, p)
	}
}

// migrate stamps a new file with the schema version and refuses files of
// another version.
func (d *DB) migrate() error {
	return d.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("preparing data file %s: %w", d.path, err)
		}
		if v := meta.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("data file %s has an unreadable schema version %q", d.path, v)
			}
			if n != SchemaVersion {
				return fmt.Errorf("data file %s has schema version %d; this presenced reads version %d", d.path, n, SchemaVersion)
			}
		} else if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("preparing data file %s: %w", d.path, err)
		}
		for _, name := range append([][]byte{bucketUsers}, webhookBuckets...) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("preparing data file %s: %w", d.path, err)
			}
		}
		return nil
	})
}

// Close stops the committer and closes the file. Saves still waiting fail.
func (d *DB) Close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.quit)
		<-d.stopped
		if cerr := d.bolt.Close(); cerr != nil {
			err = fmt.Errorf("closing data file %s: %w", d.path, cerr)
		}
	})
	return err
}

// LoadRecord returns a user's record; a user never seen has a zero record.
func (d *DB) LoadRecord(_ context.Context, user string) (presence.Record, bool, error) {
	var rec presence.Record
	found := false
	err := d.view(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketUsers).Get([]byte(user))
		if raw == nil {
			return nil
		}
		found = true
		var err error
		rec, err = presence.DecodeRecord(raw)
		return err
	})
	if err != nil {
		return presence.Record{}, false, fmt.Errorf("reading the record of %s: %w", user, err)
	}
	return rec, found, nil
}

// SaveRecord stores a user's record and returns once it is on disk.
func (d *DB) SaveRecord(ctx context.Context, user string, rec presence.Record) error {
	if err := d.put(ctx, []byte(user), presence.EncodeRecord(rec)); err != nil {
		return fmt.Errorf("writing the record of %s: %w", user, err)
	}
	return nil
}

var _ presence.Queuer = (*DB)(nil)

// QueueRecord hands a user's record to the committer at once, in the
// order of the calls, and returns a wait that returns once it is on disk:
// the presence service queues a save under the user's lock and waits for
// it after announcing the change, whose change log entry then shares the
// commit.
func (d *DB) QueueRecord(ctx context.Context, user string, rec presence.Record) (wait func() error) {
	r := saveReq{key: []byte(user), val: presence.EncodeRecord(rec), done: make(chan error, 1)}
	if err := d.enqueue(ctx, r); err != nil {
		return func() error { return fmt.Errorf("writing the record of %s: %w", user, err) }
	}
	return func() error {
		select {
		case err := <-r.done:
			if err != nil {
				return fmt.Errorf("writing the record of %s: %w", user, err)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("writing the record of %s: %w", user, ctx.Err())
		}
	}
}

// Records returns every user's record.
func (d *DB) Records(_ context.Context) (map[string]presence.Record, error) {
	out := map[string]presence.Record{}
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			rec, err := presence.DecodeRecord(v)
			if err != nil {
				return fmt.Errorf("record of %q: %w", k, err)
			}
			out[string(k)] = rec
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading presence records: %w", err)
	}
	return out, nil
}
