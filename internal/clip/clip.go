// Package clip shortens untrusted text that an error message or a log line
// quotes back, so that a hostile value cannot flood either: the one
// clipper every package uses.
package clip

import "unicode/utf8"

// Max is how many bytes of the text are kept.
const Max = 48

// Clip returns s, or its first Max bytes (never cutting a UTF-8 sequence)
// followed by "...".
func Clip(s string) string {
	if len(s) <= Max {
		return s
	}
	n := Max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
