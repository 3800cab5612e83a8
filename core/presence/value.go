package presence

import (
	"strings"
	"time"
	"unicode/utf8"
)

// MaxFieldBytes is the longest subtype or message, in bytes after decoding.
const MaxFieldBytes = 255

// Value is one presence: a state, a free-text subtype and message, and, for
// timed presence, the moment it ends. Subtype and message are any UTF-8 text
// without NUL (commas, quotes, newlines and ${...} included: the codec makes
// them safe).
type Value struct {
	State   State     `json:"state"`
	Subtype string    `json:"subtype,omitempty"`
	Message string    `json:"message,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Validate checks the limits before anything is written: a known state, and
// subtype and message of valid UTF-8, no NUL, at most MaxFieldBytes each.
func (v Value) Validate() error {
	if int(v.State) >= len(stateNames) {
		return Errorf(CodeInvalidState, "unknown presence state %d", v.State)
	}
	if err := validateField("subtype", v.Subtype); err != nil {
		return err
	}
	return validateField("message", v.Message)
}

func validateField(name, s string) error {
	if len(s) > MaxFieldBytes {
		return Errorf(CodeTooLong, "%s is %d bytes long; at most %d are allowed", name, len(s), MaxFieldBytes)
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalidText, "%s is not valid UTF-8 text", name)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Errorf(CodeInvalidText, "%s contains a NUL character", name)
	}
	return nil
}

// Same reports whether two values show the same presence; the expiry is
// presenced's own bookkeeping and Asterisk never sees it.
func (v Value) Same(o Value) bool {
	return v.State == o.State && v.Subtype == o.Subtype && v.Message == o.Message
}

// Expired reports whether a timed value has ended at now.
func (v Value) Expired(now time.Time) bool {
	return !v.Expires.IsZero() && !now.Before(v.Expires)
}

// Sanitize makes a value read from Asterisk safe to keep and show: invalid
// UTF-8 (which Asterisk produces when a plain value happened to be decoded as
// base64) becomes U+FFFD, NUL is dropped, and each field is cut to
// MaxFieldBytes on a character boundary.
func (v Value) Sanitize() Value {
	v.Subtype = sanitizeField(v.Subtype)
	v.Message = sanitizeField(v.Message)
	return v
}

func sanitizeField(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= MaxFieldBytes {
		return s
	}
	cut := MaxFieldBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
