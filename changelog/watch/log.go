package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/presenced/presenced/changelog/change"
)

// Log is the durable change log behind the hub: every change the hub
// numbers is appended to it, in order, with its number, so that the
// numbers stay valid across restarts. SSE, WebSocket, the board and
// webhooks read the same log with the same numbers: the hub's history is
// a cache of its tail. The bbolt store implements it (store.DB); a
// clustered store (NATS JetStream: a stream, its sequence as Seq) is meant
// to sit behind the same interface.
type Log interface {
	// OpenLog returns the log's identity and marks it open. The identity
	// changes when the last run did not close the log: the numbers it gave
	// out but had not written are given out again.
	OpenLog(ctx context.Context) (id string, err error)
	// CloseLog marks the log closed: every number given out was written.
	CloseLog(ctx context.Context) error
	// LogState returns the last number written, the number up to which
	// entries were trimmed, and each key's latest entry.
	LogState(ctx context.Context) (head, floor uint64, latest []change.Entry, err error)
	// AppendLog appends entries, numbered head+1, head+2, ...
	AppendLog(ctx context.Context, entries []change.Entry) error
	// ReadLog returns up to limit entries after a number, in order.
	ReadLog(ctx context.Context, after uint64, limit int) ([]change.Entry, error)
}

// An encoded change: its kind (1 byte), the time the hub numbered it (unix
// nanoseconds, 8 bytes big-endian), then the JSON of its value. Two
// changes of a key with the same JSON show the same thing (Same).

// Encode encodes a change for the log.
func Encode(c change.Change, at time.Time) ([]byte, error) {
	v := make([]byte, 9, 128)
	v[0] = byte(c.Kind)
	binary.BigEndian.PutUint64(v[1:9], uint64(at.UnixNano()))
	return c.AppendJSON(v)
}

// Same reports whether two encoded changes show the same state.
func Same(a, b []byte) bool {
	return len(a) >= 9 && len(b) >= 9 && a[0] == b[0] && string(a[9:]) == string(b[9:])
}

// KindOf returns the kind of an encoded change.
func KindOf(v []byte) change.Kind {
	if len(v) == 0 {
		return 0
	}
	return change.Kind(v[0])
}

var errCutItem = errors.New("log entry is cut")

// Decode decodes a log entry with the codecs of its kinds: the change and
// when the hub numbered it.
func Decode(kinds change.Kinds, key string, v []byte) (change.Change, time.Time, error) {
	if len(v) < 9 {
		return change.Change{}, time.Time{}, errCutItem
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC()
	c := change.Change{Kind: change.Kind(v[0]), Key: key}
	val, err := kinds.Decode(c.Kind, key, v[9:])
	if err != nil {
		return change.Change{}, at, err
	}
	c.Value = val
	return c, at, nil
}
