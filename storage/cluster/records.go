package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presenced/presenced/core/presence"
)

// RecordsBucket is the key-value bucket of presence records; LeasesBucket
// holds the users' leases, which expire after LeaseTTL when the node that
// took one is gone.
const (
	RecordsBucket = "presenced_records"
	LeasesBucket  = "presenced_leases"
	LeaseTTL      = 30 * time.Second
)

// Records keeps presence records in a JetStream key-value bucket, one key
// a user. Besides presence.Store, Load and Swap give compare-and-set on
// the key's revision: two nodes changing one user at once cannot both win
// from the same record, so the restore memory stays some serial order.
type Records struct {
	kv, leases jetstream.KeyValue
	node       string
	conn       *Conn
}

var (
	_ presence.Store  = (*Records)(nil)
	_ presence.Shared = (*Records)(nil)
)

// ErrConflict is a Swap whose record changed since it was loaded.
var ErrConflict = errors.New("cluster: the record changed since it was read")

// OpenRecords opens (creating or updating) the buckets with replicas
// copies (3 in a cluster of three or more; 1 for a node alone); node names
// this node in the leases it takes.
func (c *Conn) OpenRecords(ctx context.Context, replicas int, node string) (*Records, error) {
	kv, err := ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: RecordsBucket, Description: "presenced: per-user presence records",
			History: 1, Replicas: replicas, Storage: jetstream.FileStorage,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the records bucket: %w", err)
	}
	leases, err := ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: LeasesBucket, Description: "presenced: who is changing a user's presence",
			History: 1, Replicas: replicas, Storage: jetstream.FileStorage, TTL: LeaseTTL,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the leases bucket: %w", err)
	}
	return &Records{kv: kv, leases: leases, node: node, conn: c}, nil
}

// tryFor bounds one request of an operation on records: one unanswered
// (its stream electing a leader) is sent again.
const tryFor = 2 * time.Second

// Lock takes the user's lease, waiting while another node holds it
// (presence.Shared). A lease not given back (its node died) expires after
// LeaseTTL. Requests lost while the cluster elects a leader are sent
// again: each lease says whose it is (node and a random tag), so a lease
// taken by a request whose answer was lost is known as this one's.
func (r *Records) Lock(ctx context.Context, user string) (func(), error) {
	return bounded(ctx, "taking the lease of "+user, func() (func(), error) { return r.lock(ctx, user) },
		func(release func()) { release() }) // taken after the caller gave up: given back
}

func (r *Records) lock(ctx context.Context, user string) (func(), error) {
	if err := r.conn.connected(ctx); err != nil {
		return nil, fmt.Errorf("cluster: taking the lease of %s: %w", user, err)
	}
	k := key(user)
	mine := []byte(r.node + " " + rand.Text())
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var rev uint64
		err := retryEach(ctx, tryFor, func(ctx context.Context) (err error) {
			rev, err = r.leases.Create(ctx, k, mine)
			if err != nil && (transient(err) || errors.Is(err, context.DeadlineExceeded)) {
				// Taken, its answer lost?
				if data, seq, found, gerr := r.conn.leaderGet(ctx, "KV_"+LeasesBucket, "$KV."+LeasesBucket+"."+k); gerr == nil && found && bytes.Equal(data, mine) {
					rev, err = seq, nil
				}
			}
			return err
		})
		if err == nil {
			return func() {
				// Given back even when the caller's context has ended.
				dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = retryEach(dctx, tryFor, func(ctx context.Context) error {
					err := r.leases.Delete(ctx, k, jetstream.LastRevision(rev))
					if isWrongSequence(err) {
						return nil // expired, and maybe another's now: not ours to delete
					}
					return err
				})
			}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return nil, fmt.Errorf("cluster: taking the lease of %s: %w", user, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: taking the lease of %s: %w", user, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// LoadRecord returns a user's record, for reads (the HTTP API).
func (r *Records) LoadRecord(ctx context.Context, user string) (presence.Record, bool, error) {
	rec, _, ok, err := r.Load(ctx, user)
	return rec, ok, err
}

// key is a user's key: user names hold characters ("+", "@") that keys
// may not, so the name is base64url-encoded.
func key(user string) string { return base64.RawURLEncoding.EncodeToString([]byte(user)) }

func userOf(k string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(k)
	return string(b), err
}

// Load returns a user's record and its revision; ok is false (revision 0)
// when there is none. It asks the bucket's leader: a key-value Get may be
// answered by any replica ("direct get"), one that has not applied the
// last write yet, and an operation that started from it would lose that
// write.
func (r *Records) Load(ctx context.Context, user string) (rec presence.Record, rev uint64, ok bool, err error) {
	type loaded struct {
		rec presence.Record
		rev uint64
		ok  bool
	}
	l, err := bounded(ctx, "loading the record of "+user, func() (loaded, error) {
		rec, rev, ok, err := r.load(ctx, user)
		return loaded{rec, rev, ok}, err
	}, nil)
	return l.rec, l.rev, l.ok, err
}

func (r *Records) load(ctx context.Context, user string) (rec presence.Record, rev uint64, ok bool, err error) {
	if err := r.conn.connected(ctx); err != nil {
		return presence.Record{}, 0, false, fmt.Errorf("cluster: loading the record of %s: %w", user, err)
	}
	var data []byte
	err = retryEach(ctx, tryFor, func(ctx context.Context) (err error) {
		data, rev, ok, err = r.conn.leaderGet(ctx, "KV_"+RecordsBucket, "$KV."+RecordsBucket+"."+key(user))
		return err
	})
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("cluster: loading the record of %s: %w", user, err)
		}
		return presence.Record{}, 0, false, err
	}
	rec, err = readRecord(data)
	if err != nil {
		// Not written by a node (anything that reached NATS could write
		// here): as if there were none, at its revision, so that the
		// next save replaces it rather than failing on it for ever.
		return presence.Record{}, rev, false, nil
	}
	return rec, rev, true, nil
}

// readRecord decodes a record and checks it as the API checks a value
// before writing it: presence from the cluster is written into each
// site's Asterisk.
func readRecord(data []byte) (presence.Record, error) {
	rec, err := presence.DecodeRecord(data)
	if err != nil {
		return presence.Record{}, err
	}
	return rec, rec.Validate()
}

// Swap writes rec if the user's record is still at revision rev (0: there
// was none), and returns the new revision; ErrConflict when another write
// came first.
func (r *Records) Swap(ctx context.Context, user string, rec presence.Record, rev uint64) (uint64, error) {
	return bounded(ctx, "saving the record of "+user, func() (uint64, error) { return r.swap(ctx, user, rec, rev) }, nil)
}

func (r *Records) swap(ctx context.Context, user string, rec presence.Record, rev uint64) (uint64, error) {
	if err := r.conn.connected(ctx); err != nil {
		return 0, fmt.Errorf("cluster: saving the record of %s: %w", user, err)
	}
	var n uint64
	// Sent again while no server answers (a leader election); a write
	// that was taken but whose answer was lost finds the revision moved,
	// and the caller gets ErrConflict: the record is read again.
	err := retryEach(ctx, tryFor, func(ctx context.Context) (err error) {
		if rev == 0 {
			n, err = r.kv.Create(ctx, key(user), presence.EncodeRecord(rec))
		} else {
			n, err = r.kv.Update(ctx, key(user), presence.EncodeRecord(rec), rev)
		}
		return err
	})
	if err == nil {
		return n, nil
	}
	// A conflict: ErrKeyExists from Create, ErrKeyRevisionMismatch from
	// Update. JetStream reports it as error 10071 on a stream of one
	// replica and 10164 on a replicated one; the library maps both, and
	// the codes are checked too in case a version maps only one.
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongSequence(err) {
		return 0, ErrConflict
	}
	return 0, fmt.Errorf("cluster: saving the record of %s: %w", user, err)
}

// isWrongSequence: JetStream refused an update for its expected revision.
func isWrongSequence(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// SaveRecord writes a user's record whatever it was (presence.Store).
func (r *Records) SaveRecord(ctx context.Context, user string, rec presence.Record) error {
	if _, err := r.kv.Put(ctx, key(user), presence.EncodeRecord(rec)); err != nil {
		return fmt.Errorf("cluster: saving the record of %s: %w", user, err)
	}
	return nil
}

// Records returns every stored record (presence.Store).
func (r *Records) Records(ctx context.Context) (map[string]presence.Record, error) {
	out := map[string]presence.Record{}
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: listing records: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for k := range lister.Keys() {
		user, err := userOf(k)
		if err != nil {
			return nil, fmt.Errorf("cluster: a record key %q is not a user's", k)
		}
		rec, _, ok, err := r.Load(ctx, user)
		if err != nil {
			return nil, err
		}
		if ok {
			out[user] = rec
		}
	}
	return out, nil
}

// Watch calls changed with every user's record as saved by any node: the
// latest of each first, then every save as it happens, in order, until
// ctx ends.
func (r *Records) Watch(ctx context.Context, changed func(user string, rec presence.Record, rev uint64)) error {
	return watchAll(ctx, r.kv, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			return
		}
		user, err := userOf(e.Key())
		if err != nil {
			return // not presenced's
		}
		if rec, err := readRecord(e.Value()); err == nil {
			changed(user, rec, e.Revision())
		}
	})
}

// watchAll calls f with every entry of a bucket, the latest of each key
// first, then every change as it happens, until ctx ends. A watch that
// cannot be set up (the cluster not answering) is tried again; one cut off
// is resumed by the library's ordered consumer.
func watchAll(ctx context.Context, kv jetstream.KeyValue, f func(jetstream.KeyValueEntry)) error {
	for ctx.Err() == nil {
		w, err := kv.WatchAll(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e != nil { // nil: the latest of each has been given
				f(e)
			}
		}
		_ = w.Stop()
	}
	return ctx.Err()
}
