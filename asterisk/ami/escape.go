package ami

import "strings"

// unescapeC undoes ast_escape_c_alloc (main/utils.c), which Asterisk
// applies to the Subtype and Message of PresenceStateChange (events and
// PresenceStateList entries) and to the Value of VarSet, and to nothing
// else (BEHAVIOUR.md 4.12): \a \b \f \n \r \t \v \\ \' \" \? become the
// byte they stand for. A backslash before anything else cannot come from
// Asterisk's escaping and is kept as it is, as is a trailing one.
func unescapeC(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if r, ok := cUnescapes[s[i+1]]; ok {
			b.WriteByte(r)
			i++
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// cUnescapes maps the character after a backslash to the byte
// ast_escape_c escaped.
var cUnescapes = map[byte]byte{
	'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
	'\\': '\\', '\'': '\'', '"': '"', '?': '?',
}
