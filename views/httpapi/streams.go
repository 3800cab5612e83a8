package httpapi

import (
	"crypto/sha256"
	"net/http"
	"sync"
)

// streams are the open event streams (SSE and WebSocket) by the token
// they were opened with: a token removed at reload (SIGHUP) must not go
// on reading, nor writing, through a stream it opened before.
type streams struct {
	mu   sync.Mutex
	next uint64
	by   map[uint64]openStream
}

type openStream struct {
	sum   [32]byte
	scope Scope
	hide  bool
	close func()
}

// track notes a stream opened by r's token (none in open mode) and
// returns what forgets it.
func (s *Server) track(r *http.Request, close func()) (untrack func()) {
	if s.open() {
		return func() {}
	}
	tok := bearer(r, true)
	e := s.cfg.Tokens.entry(tok)
	if e == nil {
		return func() {}
	}
	st := &s.streams
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.by == nil {
		st.by = map[uint64]openStream{}
	}
	id := st.next
	st.next++
	st.by[id] = openStream{sum: sha256.Sum256([]byte(tok)), scope: e.scope, hide: e.hide, close: close}
	return func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		delete(st.by, id)
	}
}

// TokensChanged checks every open stream against the tokens now (call it
// after Tokens.Replace): a stream whose token is gone, or now has less
// (a lower scope, or calls' other party hidden), is closed; its client
// opens it again with what its token may do now. It returns how many
// were closed.
func (s *Server) TokensChanged() int {
	st := &s.streams
	st.mu.Lock()
	var closing []func()
	for id, o := range st.by {
		e := s.cfg.Tokens.entryBySum(o.sum)
		if e == nil || e.scope < o.scope || (e.hide && !o.hide) {
			closing = append(closing, o.close)
			delete(st.by, id)
		}
	}
	st.mu.Unlock()
	// Closed outside the lock: a close untracks its stream.
	for _, c := range closing {
		c()
	}
	return len(closing)
}
