// Package change is the one shape every change in presenced takes on its
// way to watchers: a kind, a key, a version and the key's new value. The
// domain packages (hints, presence's providers, calls, voicemail, forward)
// each decide what a change of theirs is and append it to a Sink, outside
// their locks; the hub (watch), the change log and the stores know only
// this type, so that a new kind of change touches its own package and the
// views that render it.
package change

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// Kind says what a change is about. The package that makes changes of a
// kind declares its number (hints.KindHint); the number is written in the
// change log, so it never changes meaning once used.
type Kind uint8

// Change is one change: the value its key holds after it.
type Change struct {
	Kind Kind
	// Key names what changed, unique within its kind (a hint's
	// "exten@context", a provider, "calls:PJSIP/1001"); in a cluster of
	// several sites it starts with "site/".
	Key string
	// Version orders the changes of one key: a change whose version is not
	// newer than the last one taken for its key is stale and ignored, so
	// that a domain may append from several goroutines. Zero: always taken.
	Version uint64
	// Rev, when not zero, orders the key's changes across the nodes of a
	// cluster: it is the revision of the record the change shows (a
	// presence record's compare-and-set revision in the cluster). The
	// change log never takes a change of a key after one with a higher
	// Rev, and never merges one into a later change: each is logged, in
	// the record's order. Zero: the key has no such order.
	Rev uint64
	// Value is the key's new value. It is encoded as JSON for the log
	// (or by its AppendJSON method); a value that is Gone is kept out of
	// snapshots.
	Value any
	// Source names the package that decided the change ("hints",
	// "calls", "voicemail", "forward", "phones"), for whoever reads a
	// change in memory to tell where it came from; it is not written in
	// the log, so a change read back from the log has none.
	Source string
}

// ID names the key across kinds: changes with one ID replace each other.
func (c Change) ID() ID { return ID{c.Kind, c.Key} }

// ID is a key within its kind.
type ID struct {
	Kind Kind
	Key  string
}

func (id ID) String() string { return strconv.Itoa(int(id.Kind)) + ":" + id.Key }

// Sink takes changes. It must not block, and is called outside the
// caller's locks (so a Sink may read back from the domain that calls it).
type Sink interface {
	Append(cs ...Change)
}

// SinkFunc is a function as a Sink.
type SinkFunc func(cs ...Change)

// Append calls f.
func (f SinkFunc) Append(cs ...Change) { f(cs...) }

// Logged is the change log as a write waits for it (the hub): a domain
// answers a write once the change it appended is in the log, so that no
// client is told of a change that watchers and webhooks may never see.
type Logged interface {
	// Sync returns once every change appended so far is in the log (in
	// a cluster: taken by the cluster's log, and read back).
	Sync(ctx context.Context) error
}

// Discard is a Sink that keeps nothing.
type Discard struct{}

// Append does nothing.
func (Discard) Append(...Change) {}

// Goner is met by values that may say their key holds nothing after them:
// a removed hint, or an event (a phone's call event) rather than a state.
// The hub keeps such a change as its key's latest, so that a stale change
// cannot bring the key back, but leaves it out of snapshots.
type Goner interface {
	Gone() bool
}

// Gone reports whether c's value says its key holds nothing.
func (c Change) Gone() bool {
	g, ok := c.Value.(Goner)
	return ok && g.Gone()
}

// JSONAppender is met by values that encode themselves faster than
// encoding/json does, byte for byte as it would.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// AppendJSON appends the JSON of c's value.
func (c Change) AppendJSON(b []byte) ([]byte, error) {
	if a, ok := c.Value.(JSONAppender); ok {
		return a.AppendJSON(b), nil
	}
	data, err := json.Marshal(c.Value)
	if err != nil {
		return b, fmt.Errorf("encoding the change of %s: %w", c.Key, err)
	}
	return append(b, data...), nil
}

// Entry is one entry of the change log: its number in the log, the key of
// the change, and the change encoded (kind, time, value: watch.Encode).
// The stores that hold the log (bbolt, NATS JetStream) keep it as it is.
type Entry struct {
	Seq   uint64
	Key   string
	Value []byte
	// Rev is the change's Rev (0: none). The cluster's log keeps it (a
	// header of the entry) to refuse a change older than its key's
	// latest; a single node's log has one writer and does not.
	Rev uint64
}

// Codec reads a kind's values back from the change log.
type Codec struct {
	Kind Kind
	// Name is the kind's name in logs and errors ("hint").
	Name   string
	Decode func(data []byte) (any, error)
}

// JSON is the codec of a kind whose values are T, as encoding/json
// decodes them.
func JSON[T any](kind Kind, name string) Codec {
	return Codec{Kind: kind, Name: name, Decode: func(data []byte) (any, error) {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		return v, nil
	}}
}

// Kinds are the codecs of every kind a change log holds, by kind.
type Kinds map[Kind]Codec

// NewKinds gathers the codecs the domain packages declare; two of one
// kind are a wiring mistake, reported as an error.
func NewKinds(sets ...[]Codec) (Kinds, error) {
	out := Kinds{}
	for _, set := range sets {
		for _, c := range set {
			if old, ok := out[c.Kind]; ok {
				return nil, fmt.Errorf("change kind %d is both %q and %q", c.Kind, old.Name, c.Name)
			}
			if c.Decode == nil {
				return nil, fmt.Errorf("change kind %d (%q) has no decoder", c.Kind, c.Name)
			}
			out[c.Kind] = c
		}
	}
	return out, nil
}

// Decode reads back a value of kind k.
func (ks Kinds) Decode(k Kind, key string, data []byte) (any, error) {
	c, ok := ks[k]
	if !ok {
		return nil, fmt.Errorf("log entry of %s has unknown kind %d", key, k)
	}
	v, err := c.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("log entry of %s (%s): %w", key, c.Name, err)
	}
	return v, nil
}
