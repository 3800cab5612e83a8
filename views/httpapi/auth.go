package httpapi

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/names"
)

// Scope is what a token may do; each includes the ones before it.
type Scope int

// The scopes.
const (
	ScopeRead  Scope = iota + 1 // read hints and presence
	ScopeWrite                  // set presence
	ScopeAdmin                  // everything (webhooks)
)

// parseScope reads a scope; "states" is read without the other party of
// calls (hide): a wall board's token.
func parseScope(s string) (sc Scope, hide bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "states":
		return ScopeRead, true, nil
	case "read":
		return ScopeRead, false, nil
	case "write":
		return ScopeWrite, false, nil
	case "admin":
		return ScopeAdmin, false, nil
	}
	return 0, false, fmt.Errorf("unknown scope %q (states, read, write or admin)", s)
}

// Tokens are the API's bearer tokens. Only their SHA-256 is kept, and
// they are compared in constant time. Replace swaps the whole set (SIGHUP)
// while requests are served.
type Tokens struct {
	entries atomic.Pointer[[]tokenEntry]
}

type tokenEntry struct {
	sum   [32]byte
	scope Scope
	name  string // for the audit line; "read-1" when the entry has none
	// hide: the token sees calls without their other party (number,
	// name, USR_* variables): scope "states".
	hide bool
	// phone: a phone's token ("phone/1001/1002"), which may only report
	// the events of those users' phones (GET /v1/phone-events). Its scope
	// is 0: every other endpoint refuses it.
	phone []string
}

// ErrInTokensFile marks an error of the tokens file (rather than the list).
var ErrInTokensFile = errors.New("in the tokens file")

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	if p := t.entries.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// Replace makes t hold the tokens of other.
func (t *Tokens) Replace(other *Tokens) { t.entries.Store(other.entries.Load()) }

// parseEntries reads "scope:token" or "scope:name:token" entries. A
// token holding a colon must be given with a name.
func parseEntries(lines []string, where func(i int) string) ([]tokenEntry, error) {
	var out []tokenEntry
	seen := map[[32]byte]bool{}
	taken := map[string]bool{}
	counts := map[Scope]int{}
	for i, line := range lines {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) < 2 {
			return nil, fmt.Errorf("%sentries are scope:token or scope:name:token", where(i))
		}
		var phone []string
		sc, hide, err := parseScope(parts[0])
		if rest, ok := strings.CutPrefix(strings.TrimSpace(parts[0]), "phone/"); ok {
			phone, err = phoneUsers(rest)
		}
		if err != nil {
			return nil, fmt.Errorf("%s%w", where(i), err)
		}
		name, tok := "", strings.TrimSpace(parts[1])
		if len(parts) == 3 {
			name, tok = strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2])
			if !names.Valid(name) {
				return nil, fmt.Errorf("%sa token's name is 1 to 64 letters, digits, dashes, underscores or dots", where(i))
			}
		}
		if len(tok) < 16 {
			return nil, fmt.Errorf("%stokens must be at least 16 characters", where(i))
		}
		counts[sc]++
		if name == "" {
			kind := strings.ToLower(strings.TrimSpace(parts[0]))
			if phone != nil {
				kind = "phone"
			}
			name = fmt.Sprintf("%s-%d", kind, counts[sc])
		}
		sum := sha256.Sum256([]byte(tok))
		if seen[sum] {
			return nil, fmt.Errorf("%sthe same token is given twice (one token has one scope)", where(i))
		}
		if taken[name] {
			return nil, fmt.Errorf("%sthe name %q is given to two tokens", where(i), name)
		}
		seen[sum], taken[name] = true, true
		out = append(out, tokenEntry{sum: sum, scope: sc, name: name, hide: hide, phone: phone})
	}
	return out, nil
}

// ParseTokens reads tokens from a comma-separated list of "scope:token" or
// "scope:name:token" (PRESENCED_API_TOKENS) and from a file with one entry
// a line, "#" comments allowed (PRESENCED_API_TOKENS_FILE). A token given
// twice, or two tokens with one name, is an error.
func ParseTokens(list string, file io.Reader) (*Tokens, error) {
	var lines []string
	var fromFile []int // line numbers of the file's entries
	for _, e := range strings.Split(list, ",") {
		if strings.TrimSpace(e) != "" {
			lines = append(lines, e)
		}
	}
	listed := len(lines)
	if file != nil {
		sc := bufio.NewScanner(file)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			lines = append(lines, line)
			fromFile = append(fromFile, n)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInTokensFile, err)
		}
	}
	entries, err := parseEntries(lines, func(i int) string {
		if i < listed {
			return fmt.Sprintf("entry %d: ", i+1)
		}
		return fmt.Sprintf("line %d: ", fromFile[i-listed])
	})
	if err != nil {
		if strings.HasPrefix(err.Error(), "line ") {
			return nil, fmt.Errorf("%w: %w", ErrInTokensFile, err)
		}
		return nil, err
	}
	t := &Tokens{}
	t.entries.Store(&entries)
	return t, nil
}

// bearer returns the request's bearer token, from the Authorization header
// (the scheme in any case, as RFC 7235 says) or, where a browser cannot
// send a header (EventSource, WebSocket, the board's streams), from the
// access_token query parameter.
func bearer(r *http.Request, queryOK bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if queryOK {
		return r.URL.Query().Get("access_token")
	}
	return ""
}

// phoneUsers reads the users of a phone token's scope, "1001/1002".
func phoneUsers(list string) ([]string, error) {
	var users []string
	for _, u := range strings.Split(list, "/") {
		if err := presence.ValidateUser(u); err != nil {
			return nil, fmt.Errorf("phone scope: %w", err)
		}
		users = append(users, u)
	}
	return users, nil
}

// entry returns the entry of a token; nil when it is not known.
func (t *Tokens) entry(tok string) *tokenEntry {
	if tok == "" || t == nil {
		return nil
	}
	p := t.entries.Load()
	if p == nil {
		return nil
	}
	return t.entryBySum(sha256.Sum256([]byte(tok)))
}

// entryBySum returns the entry of a token's SHA-256; nil when it is not
// known.
func (t *Tokens) entryBySum(sum [32]byte) *tokenEntry {
	if t == nil {
		return nil
	}
	p := t.entries.Load()
	if p == nil {
		return nil
	}
	var found *tokenEntry
	for i, e := range *p {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found = &(*p)[i]
		}
	}
	return found
}

// hides reports whether the request's token may not see calls' other
// party (scope "states").
func (t *Tokens) hides(r *http.Request, queryOK bool) bool {
	e := t.entry(bearer(r, queryOK))
	return e != nil && e.hide
}

// scopeOf returns the scope and name of the request's token; 0 when there
// is none or it is not known (one token has one scope: ParseTokens
// refuses a token given twice).
func (t *Tokens) scopeOf(r *http.Request, queryOK bool) (Scope, string) {
	e := t.entry(bearer(r, queryOK))
	if e == nil {
		return 0, ""
	}
	return e.scope, e.name
}
