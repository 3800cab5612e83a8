package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/clip"
)

// Event is the JSON body of a delivery:
//
//	{"id":"42","type":"hint","time":"...","hint":{...hint state, as GET /v1/hints/{ref}...}}
//	{"id":"43","type":"presence","time":"...","provider":"CustomPresence:1001","presence":{"state":"away","message":"Lunch"}}
//	{"id":"44","type":"mailbox","time":"...","mailbox":{"mailbox":"1001@default","new":1,"old":0}}
//	{"id":"45","type":"calls","time":"...","calls":{"device":"PJSIP/1001","calls":[{...as GET /v1/calls...}]}}
//	{"id":"46","type":"forward","time":"...","forward":{"user":"1001","unconditional":{"enabled":true,"destination":"0612345678"},...}}
//	{"id":"47","type":"phone","time":"...","phone":{"user":"1001","event":"incoming","callId":"...","number":"0427466347","name":"..."}}
//	{"id":"test-...","type":"test","time":"..."}
//
// id is the journal's sequence number: it grows with every change, across
// restarts, and is the same on every retry of a delivery (deliveries are at
// least once: use it to drop a repeat). time is when presenced saw the
// change. snapshot marks the current state sent to a new webhook before its
// first change; coalesced marks the latest state of a hint or provider sent
// instead of its changes to a target that fell too far behind.
type Event struct {
	ID        string             `json:"id"`
	Type      string             `json:"type"`
	Time      time.Time          `json:"time"`
	Snapshot  bool               `json:"snapshot,omitempty"`
	Coalesced bool               `json:"coalesced,omitempty"`
	Hint      *hints.State       `json:"hint,omitempty"`
	Provider  string             `json:"provider,omitempty"`
	Presence  *presence.Value    `json:"presence,omitempty"`
	Invalid   bool               `json:"invalid,omitempty"`
	Mailbox   *voicemail.Count   `json:"mailbox,omitempty"`
	Calls     *calls.DeviceCalls `json:"calls,omitempty"`
	Forward   *forward.Forwards  `json:"forward,omitempty"`
	Phone     *calls.PhoneEvent  `json:"phone,omitempty"`
}

// The event types.
const (
	TypeHint     = "hint"
	TypePresence = "presence"
	TypeMailbox  = "mailbox"
	TypeCalls    = "calls"
	TypeForward  = "forward"
	TypePhone    = "phone"
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
	if e.Mailbox != nil {
		box, _, _ := strings.Cut(e.Mailbox.Mailbox, "@")
		return box
	}
	if e.Calls != nil {
		_, res, _ := strings.Cut(e.Calls.Device, "/")
		return res
	}
	if e.Forward != nil {
		return e.Forward.User
	}
	if e.Phone != nil {
		return e.Phone.User
	}
	if _, user, ok := strings.Cut(e.Provider, ":"); ok {
		return user
	}
	return ""
}

// decodeValue turns a log entry back into an event.
func decodeValue(kinds change.Kinds, seq uint64, key string, v []byte) (Event, error) {
	c, at, err := watch.Decode(kinds, key, v)
	if err != nil {
		return Event{}, fmt.Errorf("log entry %d: %w", seq, err)
	}
	e := Event{ID: strconv.FormatUint(seq, 10), Time: at}
	switch val := c.Value.(type) {
	case hints.State:
		e.Type, e.Hint = TypeHint, &val
	case hints.ProviderPresence:
		e.Type, e.Provider, e.Presence, e.Invalid = TypePresence, key, &val.Value, val.Invalid
	case voicemail.Count:
		e.Type, e.Mailbox = TypeMailbox, &val
	case calls.DeviceCalls:
		e.Type, e.Calls = TypeCalls, &val
	case forward.Forwards:
		e.Type, e.Forward = TypeForward, &val
	case calls.PhoneEvent:
		e.Type, e.Phone = TypePhone, &val
	}
	return e, nil
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
		return fmt.Errorf("timestamp %q is not unix seconds", clip.Clip(timestamp))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp is %v away from now", d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, payload)), []byte(signature)) {
		return errors.New("signature does not match")
	}
	return nil
}
