package watch

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/presenced/presenced/hints"
)

// Entry is one entry of the change log: the hub's sequence number, the
// key of the hint ("exten@context") or provider, and the encoded item
// (EncodeItem). It is an alias of an unnamed struct so that a store can
// implement Log without importing this package.
type Entry = struct {
	Seq   uint64
	Key   string
	Value []byte
}

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
	// JournalState returns the last number written, the number up to which
	// entries were trimmed, and each key's latest entry.
	JournalState(ctx context.Context) (head, floor uint64, latest []Entry, err error)
	// AppendJournal appends entries, numbered head+1, head+2, ...
	AppendJournal(ctx context.Context, entries []Entry) error
	// ReadJournal returns up to limit entries after a number, in order.
	ReadJournal(ctx context.Context, after uint64, limit int) ([]Entry, error)
}

// An encoded item: kind (1 byte), the time the hub numbered it (unix
// nanoseconds, 8 bytes big-endian), then the JSON of the hint state or of
// the provider's presence. Two items of a key with the same JSON show the
// same thing (SameItem).

// EncodeItem encodes an item for the log.
func EncodeItem(it Item, at time.Time) ([]byte, error) {
	var data []byte
	var err error
	switch it.Kind {
	case KindHint:
		data, err = json.Marshal(it.Hint)
	case KindMailbox:
		data, err = json.Marshal(it.Mailbox)
	case KindCalls:
		data, err = json.Marshal(it.Calls)
	case KindForward:
		data, err = json.Marshal(it.Forward)
	case KindPhone:
		data, err = json.Marshal(it.Phone)
	case KindPresence:
		v := make([]byte, 9, 9+96+len(it.Presence.Value.Subtype)+len(it.Presence.Value.Message))
		v[0] = byte(it.Kind)
		binary.BigEndian.PutUint64(v[1:9], uint64(at.UnixNano()))
		return appendPresenceJSON(v, it.Presence), nil
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

// SameItem reports whether two encoded items show the same state.
func SameItem(a, b []byte) bool {
	return len(a) >= 9 && len(b) >= 9 && a[0] == b[0] && string(a[9:]) == string(b[9:])
}

// KindOf returns the kind of an encoded item.
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return 0
	}
	return Kind(v[0])
}

var errCutItem = errors.New("log entry is cut")

// DecodeItem decodes a log entry: the item and when the hub numbered it.
func DecodeItem(key string, v []byte) (Item, time.Time, error) {
	if len(v) < 9 {
		return Item{}, time.Time{}, errCutItem
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC()
	it := Item{Kind: Kind(v[0]), Key: key}
	switch it.Kind {
	case KindHint:
		if err := json.Unmarshal(v[9:], &it.Hint); err != nil {
			return Item{}, at, fmt.Errorf("log entry of %s: %w", key, err)
		}
	case KindPresence:
		if err := json.Unmarshal(v[9:], &it.Presence); err != nil {
			return Item{}, at, fmt.Errorf("log entry of %s: %w", key, err)
		}
	case KindMailbox:
		if err := json.Unmarshal(v[9:], &it.Mailbox); err != nil {
			return Item{}, at, fmt.Errorf("log entry of %s: %w", key, err)
		}
	case KindCalls:
		if err := json.Unmarshal(v[9:], &it.Calls); err != nil {
			return Item{}, at, fmt.Errorf("log entry of %s: %w", key, err)
		}
	case KindForward:
		if err := json.Unmarshal(v[9:], &it.Forward); err != nil {
			return Item{}, at, fmt.Errorf("log entry of %s: %w", key, err)
		}
	case KindPhone:
		if err := json.Unmarshal(v[9:], &it.Phone); err != nil {
			return Item{}, at, fmt.Errorf("log entry of %s: %w", key, err)
		}
	default:
		return Item{}, at, fmt.Errorf("log entry of %s has unknown kind %d", key, v[0])
	}
	return it, at, nil
}

// appendPresenceJSON appends what json.Marshal makes of a provider's
// presence without an expiry, byte for byte (FuzzPresenceJSON holds it to
// that), without reflection: presence changes are most of the log, and
// encoding them was a fifth of its cost.
func appendPresenceJSON(b []byte, p hints.ProviderPresence) []byte {
	b = append(b, `{"presence":{"state":`...)
	b = appendJSONString(b, p.Value.State.String())
	if p.Value.Subtype != "" {
		b = append(b, `,"subtype":`...)
		b = appendJSONString(b, p.Value.Subtype)
	}
	if p.Value.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, p.Value.Message)
	}
	if !p.Value.Expires.IsZero() {
		// As time.Time's MarshalJSON writes it: when a timed presence ends.
		b = append(b, `,"expires":"`...)
		b = p.Value.Expires.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, '}')
	if p.Invalid {
		b = append(b, `,"invalid":true`...)
	}
	return append(b, '}')
}

// appendJSONString is encoding/json's string encoding (HTML-safe, as
// json.Marshal does it): quotes and backslashes escaped, \b \f \n \r \t,
// other control characters and < > & as \u00XX, U+2028 and U+2029 as
// \u2028 and \u2029, invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
