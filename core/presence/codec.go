package presence

import (
	"encoding/base64"
	"strings"

	"github.com/presenced/presenced/internal/clip"
)

// Encode returns the PRESENCE_STATE() value for v, always in the form
// "state,<base64 subtype>,<base64 message>,e".
//
// Asterisk splits the value on commas with no escaping (func_presencestate.c
// parse_data), so free text with a comma is either rejected or, if the text
// after the comma holds an 'e', silently base64-decoded into garbage
// (BEHAVIOUR.md 4.2, 4.7 V1/V3). Base64 has no comma, quote, backslash or
// space, and the 'e' option makes Asterisk decode it back exactly. The value
// is never empty, which Asterisk would reject.
func Encode(v Value) string {
	var b strings.Builder
	enc := base64.StdEncoding
	b.Grow(len(stateNames[DND]) + enc.EncodedLen(len(v.Subtype)) + enc.EncodedLen(len(v.Message)) + 4)
	b.WriteString(v.State.String())
	b.WriteByte(',')
	b.WriteString(enc.EncodeToString([]byte(v.Subtype)))
	b.WriteByte(',')
	b.WriteString(enc.EncodeToString([]byte(v.Message)))
	b.WriteString(",e")
	return b.String()
}

// Decode parses a stored PRESENCE_STATE value (astdb CustomPresence/<user>,
// or what PRESENCE_STATE() was given) exactly as Asterisk does: fields split
// with strsep on ',' (a fifth field and beyond are ignored), state required
// and case-insensitive, options empty or containing 'e', and with 'e' the
// subtype and message decoded with Asterisk's lenient base64 decoder. The
// result may hold invalid UTF-8 where Asterisk would hold garbage; see
// Value.Sanitize.
func Decode(raw string) (Value, error) {
	fields := strings.SplitN(raw, ",", 5)
	if fields[0] == "" {
		return Value{}, Errorf(CodeInvalidState, "presence value has no state")
	}
	st, err := ParseState(fields[0])
	if err != nil {
		return Value{}, err
	}
	v := Value{State: st}
	if len(fields) > 1 {
		v.Subtype = fields[1]
	}
	if len(fields) > 2 {
		v.Message = fields[2]
	}
	if len(fields) > 3 {
		opts := fields[3]
		if opts != "" && !strings.Contains(opts, "e") {
			return Value{}, Errorf(CodeInvalidArgument, "invalid presence options %q", clip.Clip(opts))
		}
		if strings.Contains(opts, "e") {
			v.Subtype = asteriskBase64Decode(v.Subtype)
			v.Message = asteriskBase64Decode(v.Message)
		}
	}
	return v, nil
}

// DecodeField decodes a field read with PRESENCE_STATE(provider,field,e):
// Asterisk re-encodes the decoded text in standard padded base64.
func DecodeField(b64 string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", WrapError(CodeInternal, err, "Asterisk returned a presence field that is not base64")
	}
	return string(b), nil
}

// asteriskBase64Decode mirrors ast_base64decode (main/utils.c): it stops at
// the first NUL or '=', maps every byte outside the alphabet to 63, and drops
// leftover bits. The result is cut at the first NUL, as Asterisk keeps it in
// a C string.
func asteriskBase64Decode(s string) string {
	out := make([]byte, 0, len(s)*3/4+1)
	var acc, bits uint
	for i := 0; i < len(s) && s[i] != '='; i++ {
		acc = acc<<6 | uint(b64Index(s[i]))
		bits += 6
		if bits >= 8 {
			bits -= 8
			c := byte(acc >> bits)
			if c == 0 {
				return string(out)
			}
			out = append(out, c)
		}
	}
	return string(out)
}

func b64Index(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '+':
		return 62
	}
	return 63 // '/' and, as in Asterisk's table, every invalid byte
}
