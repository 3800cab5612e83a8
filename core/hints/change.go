package hints

import (
	"time"
	"unicode/utf8"

	"github.com/presenced/presenced/changelog/change"
)

// The kinds of change the hint table makes (their numbers are in the
// change log: never reuse one).
const (
	KindHint     change.Kind = 1 // a hint's whole state (State)
	KindPresence change.Kind = 2 // a presence provider's presence (ProviderPresence)
)

// Kinds are the codecs of the table's changes.
func Kinds() []change.Codec {
	return []change.Codec{change.JSON[State](KindHint, "hint"), {Kind: KindPresence, Name: "presence", Decode: decodeProviderPresence}}
}

// Gone reports a state that says its hint was removed (change.Goner).
func (s State) Gone() bool { return s.Removed }

// AppendJSON appends what json.Marshal makes of a provider's presence,
// byte for byte (change.JSONAppender) (FuzzPresenceJSON holds it to
// that), without reflection: presence changes are most of the log, and
// encoding them was a fifth of its cost.
func (p ProviderPresence) AppendJSON(b []byte) []byte {
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
