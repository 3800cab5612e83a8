package httpapi

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Scope is what a token may do; each includes the ones before it.
type Scope int

// The scopes.
const (
	ScopeRead  Scope = iota + 1 // read hints and presence
	ScopeWrite                  // set presence
	ScopeAdmin                  // everything (webhooks, later)
)

func parseScope(s string) (Scope, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return 0, fmt.Errorf("unknown scope %q (read, write or admin)", s)
}

// Tokens are the API's bearer tokens. Only their SHA-256 is kept, and
// they are compared in constant time.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	sum   [32]byte
	scope Scope
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// add adds one "scope:token" entry.
func (t *Tokens) add(entry string) error {
	scope, tok, ok := strings.Cut(strings.TrimSpace(entry), ":")
	if !ok || len(strings.TrimSpace(tok)) < 16 {
		return fmt.Errorf("token entries are scope:token, with tokens of at least 16 characters")
	}
	sc, err := parseScope(scope)
	if err != nil {
		return err
	}
	t.entries = append(t.entries, tokenEntry{sum: sha256.Sum256([]byte(strings.TrimSpace(tok))), scope: sc})
	return nil
}

// ParseTokens reads tokens from a comma-separated list of "scope:token"
// (PRESENCED_API_TOKENS) and from a file with one "scope:token" a line,
// "#" comments allowed (PRESENCED_API_TOKENS_FILE).
func ParseTokens(list string, file io.Reader) (*Tokens, error) {
	t := &Tokens{}
	for _, e := range strings.Split(list, ",") {
		if strings.TrimSpace(e) == "" {
			continue
		}
		if err := t.add(e); err != nil {
			return nil, err
		}
	}
	if file != nil {
		sc := bufio.NewScanner(file)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := t.add(line); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// scopeOf returns the scope of the request's token: the Authorization
// bearer header, or the access_token query parameter (browsers cannot set
// headers on EventSource and WebSocket). 0 when there is none or it is
// not known.
func (t *Tokens) scopeOf(r *http.Request) Scope {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == "" {
		return 0
	}
	sum := sha256.Sum256([]byte(tok))
	var best Scope
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 && e.scope > best {
			best = e.scope
		}
	}
	return best
}
