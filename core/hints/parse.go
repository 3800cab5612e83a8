package hints

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/presenced/presenced/core/presence"
)

// decodeProviderPresence reads a provider's presence back from the change
// log. What AppendJSON wrote (every entry presenced makes) is read
// directly: a start reads the latest presence of every user, and
// encoding/json's reflection was most of that. Anything else (an escape in
// a string, another order, an older writer's form) goes through
// encoding/json, which FuzzPresenceJSON holds the direct read to.
func decodeProviderPresence(data []byte) (any, error) {
	if p, ok := parseProviderPresence(data); ok {
		return p, nil
	}
	var p ProviderPresence
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return p, nil
}

// parseProviderPresence reads exactly AppendJSON's form; ok is false for
// anything else.
func parseProviderPresence(b []byte) (p ProviderPresence, ok bool) {
	r := reader{b: b}
	if !r.lit(`{"presence":{"state":`) {
		return p, false
	}
	st, ok := r.str()
	if !ok {
		return p, false
	}
	state, err := presence.ParseState(st)
	if err != nil || state.String() != st {
		return p, false
	}
	p.Value.State = state
	if r.lit(`,"subtype":`) {
		if p.Value.Subtype, ok = r.str(); !ok || p.Value.Subtype == "" {
			return p, false
		}
	}
	if r.lit(`,"message":`) {
		if p.Value.Message, ok = r.str(); !ok || p.Value.Message == "" {
			return p, false
		}
	}
	if r.lit(`,"expires":`) {
		s, ok := r.str()
		if !ok {
			return p, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.IsZero() {
			return p, false
		}
		p.Value.Expires = t
	}
	if !r.lit(`}`) {
		return p, false
	}
	if r.lit(`,"invalid":true`) {
		p.Invalid = true
	}
	return p, r.lit(`}`) && len(r.b) == 0
}

// reader reads a JSON text from its start.
type reader struct{ b []byte }

// lit consumes s if the text goes on with it.
func (r *reader) lit(s string) bool {
	if len(r.b) < len(s) || string(r.b[:len(s)]) != s {
		return false
	}
	r.b = r.b[len(s):]
	return true
}

// str consumes a string without escapes, of valid UTF-8 and no control
// characters (what AppendJSON writes of plain text); ok is false for any
// other, which the caller leaves to encoding/json.
func (r *reader) str() (string, bool) {
	if len(r.b) == 0 || r.b[0] != '"' {
		return "", false
	}
	end := bytes.IndexByte(r.b[1:], '"')
	if end < 0 {
		return "", false
	}
	s := r.b[1 : 1+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(s) {
		return "", false
	}
	r.b = r.b[2+end:]
	return string(s), true
}
