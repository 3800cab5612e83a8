// Package redact keeps secrets (the ARI password, the AMI secret, API
// tokens, webhook secrets) out of everything presenced shows: log lines,
// /readyz and metrics. Errors from libraries quote URLs and frames back;
// rather than trusting every path not to, what leaves presenced goes
// through one Redactor, which knows the secrets and the shapes that carry
// them (URL user info, api_key=, Authorization headers, AMI's Secret:).
package redact

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"sync"
)

// Mask replaces what is removed.
const Mask = "[redacted]"

// shapes match what carries a credential whatever its value: user info in
// a URL, an api_key or access_token query parameter, an Authorization
// header and AMI's Secret field. The value ends at a delimiter of its
// shape. Each has a cheap test first (trigger, case-insensitive): a log
// line is rarely any of them, and regular expressions cost tens of
// microseconds a line where the test costs a few hundred nanoseconds.
var shapes = []struct {
	trigger string
	re      *regexp.Regexp
}{
	{"://", regexp.MustCompile(`(://)[^/\s"@]+@`)},
	{"api_key=", regexp.MustCompile(`(?i)(api_key=)[^&\s"]*`)},
	{"access_token=", regexp.MustCompile(`(?i)(access_token=)[^&\s"]*`)},
	{"authorization", regexp.MustCompile(`(?i)(authorization:\s*)[^\r\n"\\]*`)},
	{"secret:", regexp.MustCompile(`(?i)((?:^|\\n|\n|\\r\\n|\r\n)secret:\s*)[^\r\n"\\]*`)},
}

// lowerASCII writes b in lower-case ASCII into dst.
func lowerASCII(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// minSecret is the shortest secret replaced wherever it appears: shorter
// ones ("ari") are common words in the lines themselves, and are only
// caught by their shapes.
const minSecret = 4

// Redactor removes known secrets and credential shapes from text. The
// zero value removes shapes only. Safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets [][]byte // longest first, so that a secret containing another goes whole
}

// New returns a Redactor for these secrets (empty ones are ignored).
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Set(secrets...)
	return r
}

// Set replaces the known secrets (tokens change at SIGHUP).
func (r *Redactor) Set(secrets ...string) {
	var out [][]byte
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < minSecret || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, []byte(s))
		// In a JSON log line the secret appears escaped.
		if q, _ := json.Marshal(s); len(q) > 2 && string(q[1:len(q)-1]) != s {
			out = append(out, q[1:len(q)-1])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	r.mu.Lock()
	r.secrets = out
	r.mu.Unlock()
}

// Bytes returns b without secrets (b itself when there is none).
func (r *Redactor) Bytes(b []byte) []byte {
	if r != nil {
		r.mu.RLock()
		for _, s := range r.secrets {
			if bytes.Contains(b, s) {
				b = bytes.ReplaceAll(b, s, []byte(Mask))
			}
		}
		r.mu.RUnlock()
	}
	var buf [1024]byte
	lower := lowerASCII(buf[:0], b)
	for _, sh := range shapes {
		if bytes.Contains(lower, []byte(sh.trigger)) && sh.re.Match(b) {
			b = sh.re.ReplaceAll(b, []byte("${1}"+Mask))
		}
	}
	return b
}

// String returns s without secrets.
func (r *Redactor) String(s string) string { return string(r.Bytes([]byte(s))) }

// Writer returns w with every write redacted. zerolog writes a whole line
// per Write, so a secret is never split between two.
func (r *Redactor) Writer(w io.Writer) io.Writer { return writer{r, w} }

type writer struct {
	r *Redactor
	w io.Writer
}

// Unwrap returns the writer below (to ask whether it is a terminal).
func (w writer) Unwrap() io.Writer { return w.w }

func (w writer) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.r.Bytes(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
