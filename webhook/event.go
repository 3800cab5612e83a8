package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/watch"
)

// Event is the JSON body of a delivery:
//
//	{"id":"42","type":"hint","time":"...","hint":{...hint state, as GET /v1/hints/{ref}...}}
//	{"id":"43","type":"presence","time":"...","provider":"CustomPresence:1001","presence":{"state":"away","message":"Lunch"}}
//	{"id":"test-...","type":"test","time":"..."}
//
// id is the journal's sequence number: it grows with every change, across
// restarts, and is the same on every retry of a delivery (deliveries are at
// least once: use it to drop a repeat). time is when presenced saw the
// change. snapshot marks the current state sent to a new webhook before its
// first change; coalesced marks the latest state of a hint or provider sent
// instead of its changes to a target that fell too far behind.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Snapshot  bool            `json:"snapshot,omitempty"`
	Coalesced bool            `json:"coalesced,omitempty"`
	Hint      *hints.State    `json:"hint,omitempty"`
	Provider  string          `json:"provider,omitempty"`
	Presence  *presence.Value `json:"presence,omitempty"`
	Invalid   bool            `json:"invalid,omitempty"`
}

// The event types.
const (
	TypeHint     = "hint"
	TypePresence = "presence"
	TypeTest     = "test"
)

func (e Event) value() presence.Value {
	switch {
	case e.Hint != nil:
		return e.Hint.Presence
	case e.Presence != nil:
		return *e.Presence
	}
	return presence.Value{}
}

func (e Event) user() string {
	if e.Hint != nil {
		return e.Hint.Exten
	}
	if _, user, ok := strings.Cut(e.Provider, ":"); ok {
		return user
	}
	return ""
}

// A journal value: kind (1 byte), the change's time (unix nanoseconds,
// 8 bytes big-endian), then the JSON of the hint state or the provider's
// presence. Two values of a key with the same JSON show the same thing.

func encodeValue(it watch.Item, at time.Time) ([]byte, error) {
	var data []byte
	var err error
	switch it.Kind {
	case watch.KindHint:
		data, err = json.Marshal(it.Hint)
	case watch.KindPresence:
		data, err = json.Marshal(it.Presence)
	default:
		return nil, fmt.Errorf("item of unknown kind %d", it.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding the change of %s: %w", it.Key, err)
	}
	v := make([]byte, 0, 9+len(data))
	v = append(v, byte(it.Kind))
	v = binary.BigEndian.AppendUint64(v, uint64(at.UnixNano()))
	return append(v, data...), nil
}

// sameData reports whether two journal values show the same state.
func sameData(a, b []byte) bool {
	return len(a) >= 9 && len(b) >= 9 && a[0] == b[0] && string(a[9:]) == string(b[9:])
}

var errCutValue = errors.New("journal value is cut")

// decodeValue turns a journal entry back into an event.
func decodeValue(seq uint64, key string, v []byte) (Event, error) {
	if len(v) < 9 {
		return Event{}, errCutValue
	}
	e := Event{ID: strconv.FormatUint(seq, 10), Time: time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC()}
	switch watch.Kind(v[0]) {
	case watch.KindHint:
		var st hints.State
		if err := json.Unmarshal(v[9:], &st); err != nil {
			return Event{}, fmt.Errorf("journal entry %d: %w", seq, err)
		}
		e.Type, e.Hint = TypeHint, &st
	case watch.KindPresence:
		var p hints.ProviderPresence
		if err := json.Unmarshal(v[9:], &p); err != nil {
			return Event{}, fmt.Errorf("journal entry %d: %w", seq, err)
		}
		e.Type, e.Provider, e.Presence, e.Invalid = TypePresence, key, &p.Value, p.Invalid
	default:
		return Event{}, fmt.Errorf("journal entry %d has unknown kind %d", seq, v[0])
	}
	return e, nil
}

// kindOf returns the kind of a journal value.
func kindOf(v []byte) watch.Kind {
	if len(v) == 0 {
		return 0
	}
	return watch.Kind(v[0])
}

// Signing. Every delivery carries
//
//	Presenced-Event-Id:  the event's id
//	Presenced-Timestamp: unix seconds when the request was made
//	Presenced-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + payload)>
//
// where payload is the JSON body of a POST, or the whole URL of a GET
// action URL. A receiver recomputes the HMAC with its secret, compares in
// constant time, and refuses timestamps too far from its clock (replay).

// SignatureHeader, TimestampHeader and EventIDHeader name the headers.
const (
	SignatureHeader = "Presenced-Signature"
	TimestampHeader = "Presenced-Timestamp"
	EventIDHeader   = "Presenced-Event-Id"
)

// Sign returns the signature header's value for a payload.
func Sign(secret string, timestamp int64, payload []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's signature and timestamp headers against a
// payload: the signature must match (in constant time) and the timestamp
// be within tolerance of now.
func Verify(secret, signature, timestamp string, payload []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not unix seconds", clip(timestamp))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp is %v away from now", d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, payload)), []byte(signature)) {
		return errors.New("signature does not match")
	}
	return nil
}
