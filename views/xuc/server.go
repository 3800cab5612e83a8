package xuc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/internal/ratelimit"
)

// Presence sets and clears a user's DND, as the dnd hooks do.
type Presence interface {
	SetDND(ctx context.Context, user string, on bool) error
}

// Forwards keeps the users' forwards (*forward.Service).
type Forwards interface {
	Set(ctx context.Context, user string, k forward.Kind, on bool, destination string) (forward.Forwards, error)
}

// Calls dials and hangs up over AMI (nil without AMI: dial and hangup
// answer an error).
type Calls interface {
	Dial(ctx context.Context, user, device, number string) error
	Hangup(ctx context.Context, channel string) error
}

// Config configures a Server.
type Config struct {
	Users    map[string]User
	Hub      *watch.Hub
	Presence Presence
	Forwards Forwards
	Calls    Calls
	// Site, in a cluster of sites, is the site whose hints a number means.
	Site string
	// TokenTTL is how long a token from a login is good (default 24h);
	// auth/check gives a fresh one.
	TokenTTL time.Duration
	// Origins are the web origins' hosts allowed to open the WebSocket
	// besides the server's own.
	Origins []string
	Log     zerolog.Logger
	Now     func() time.Time
}

// Server serves the xuc API's paths (Handler).
type Server struct {
	cfg Config
	mu  sync.Mutex
	// tokens are the sessions by their token's SHA-256; byLogin a
	// login's, oldest first.
	tokens     map[[32]byte]*session
	byLogin    map[string][][32]byte
	swept      time.Time
	nextSocket uint64
	// failures holds back password guessing, per login and per address;
	// logged lets a few of its log lines through.
	failures *ratelimit.Backoff
	logged   *ratelimit.Sampler
	// dummy is compared with for an unknown login, so that a login's
	// existence does not show in the time an answer takes.
	dummy []byte
	// hashing bounds the bcrypt comparisons running at once: each costs
	// tens of milliseconds of CPU, and a flood of logins must not take
	// the hooks' CPU.
	hashing chan struct{}
}

type session struct {
	login           string
	issued, expires time.Time
	// sockets are the cancels of the WebSockets opened with the token.
	sockets map[uint64]context.CancelFunc
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("presenced"), bcrypt.DefaultCost)
	return &Server{cfg: cfg, tokens: map[[32]byte]*session{}, byLogin: map[string][][32]byte{}, dummy: dummy, hashing: make(chan struct{}, 2),
		failures: ratelimit.NewBackoff(5, time.Second, 5*time.Minute, 10000).WithClock(cfg.Now), logged: ratelimit.NewSampler(10*time.Second, 10)}
}

// The paths served.
const (
	PathLogin  = "/xuc/api/2.0/auth/login"
	PathCheck  = "/xuc/api/2.0/auth/check"
	PathLogout = "/xuc/api/2.0/auth/logout"
	PathCTI    = "/xuc/api/2.0/cti"
)

// Handler serves the login, the token check and the WebSocket.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathLogin, s.login)
	mux.HandleFunc("GET "+PathCheck, s.check)
	mux.HandleFunc("POST "+PathLogout, s.logout)
	mux.HandleFunc("GET "+PathCTI, s.cti)
	return mux
}

// authError is the body of a refused login or token: xuc's shape.
type authError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type loginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

type loginAnswer struct {
	Login string `json:"login"`
	Token string `json:"token"`
	TTL   int    `json:"TTL"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096+1))
	if err == nil && len(body) > 4096 {
		err = errors.New("the body is too large")
	}
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || req.Login == "" || req.Password == "" {
		writeJSON(w, 400, authError{"BadRequest", "the body must be {\"login\":...,\"password\":...}"})
		return
	}
	// Guessing is held back per login and per address, before any
	// password is compared: a few tries, then longer and longer waits.
	keys := ratelimit.LoginKeys(req.Login, r.RemoteAddr)
	if wait := s.failures.Wait(keys...); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
		writeJSON(w, 429, authError{"TooManyAttempts", "too many failed logins; try again later"})
		return
	}
	u, ok := s.cfg.Users[req.Login]
	hash := s.dummy
	if ok {
		hash = u.Hash
	}
	select {
	case s.hashing <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	wrong := bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil
	<-s.hashing
	if wrong || !ok {
		n := s.failures.Failed(keys...)
		if log, held := s.logged.Allow(); log {
			s.cfg.Log.Warn().Str("login", clip.Clip(req.Login)).Str("remote", r.RemoteAddr).Int("failures", n).Int("not_logged", held).Msg("xuc login refused")
		}
		writeJSON(w, 401, authError{"InvalidCredentials", "wrong login or password"})
		return
	}
	s.failures.Succeeded(keys...)
	writeJSON(w, 200, s.issue(u.Login))
}

// tokenKey is what a token is kept and looked up by: its SHA-256, so that
// the map holds no token and a lookup's time says nothing of the tokens.
func tokenKey(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// issue makes a token for login. A login holds at most maxTokens: the
// oldest is revoked for a new one.
func (s *Server) issue(login string) loginAnswer {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	k := tokenKey(tok)
	s.tokens[k] = &session{login: login, issued: now, expires: now.Add(s.cfg.TokenTTL), sockets: map[uint64]context.CancelFunc{}}
	mine := append(s.byLogin[login], k)
	for len(mine) > maxTokens {
		s.revoke(mine[0])
		mine = mine[1:]
	}
	s.byLogin[login] = mine
	return loginAnswer{Login: login, Token: tok, TTL: int(s.cfg.TokenTTL / time.Second)}
}

// maxTokens is how many tokens one login holds at once (its devices and
// browser tabs).
const maxTokens = 16

// sweep forgets tokens expired for longer than a TTL (until then, they
// are answered TokenExpired rather than InvalidToken); s.mu is held.
func (s *Server) sweep(now time.Time) {
	if now.Sub(s.swept) < time.Minute {
		return
	}
	s.swept = now
	for k, ss := range s.tokens {
		if now.Sub(ss.expires) > s.cfg.TokenTTL {
			s.revoke(k)
		}
	}
}

// revoke forgets a token and closes the sockets opened with it; s.mu is
// held.
func (s *Server) revoke(k [32]byte) {
	if ss := s.forget(k); ss != nil {
		for _, cancel := range ss.sockets {
			cancel()
		}
	}
}

// forget forgets a token, leaving the sockets opened with it open, and
// returns its session (nil when there was none); s.mu is held.
func (s *Server) forget(k [32]byte) *session {
	ss, ok := s.tokens[k]
	if !ok {
		return nil
	}
	delete(s.tokens, k)
	mine := s.byLogin[ss.login]
	if i := slices.Index(mine, k); i >= 0 {
		mine = slices.Delete(mine, i, i+1)
	}
	if len(mine) == 0 {
		delete(s.byLogin, ss.login)
	} else {
		s.byLogin[ss.login] = mine
	}
	return ss
}

// tokenState is what a token is.
type tokenState int

const (
	tokenUnknown tokenState = iota
	tokenExpired
	tokenGood
)

// lookup returns the session of a token and what it is.
func (s *Server) lookup(tok string) (*session, [32]byte, tokenState) {
	k := tokenKey(tok)
	if tok == "" {
		return nil, k, tokenUnknown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.tokens[k]
	switch {
	case !ok:
		return nil, k, tokenUnknown
	case s.cfg.Now().After(ss.expires):
		return ss, k, tokenExpired
	}
	return ss, k, tokenGood
}

// tokenRefused answers a token that is not good: xuc's TokenExpired for
// an expired one, InvalidToken for the rest.
func tokenRefused(w http.ResponseWriter, st tokenState) {
	if st == tokenExpired {
		writeJSON(w, 401, authError{"TokenExpired", "the token has expired: log in again"})
		return
	}
	writeJSON(w, 401, authError{"InvalidToken", "the token is wrong or was revoked: log in again"})
}

// check serves auth/check: a good token is swapped for a fresh one (the
// old one is revoked; sockets opened with it stay open).
func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ss, k, st := s.lookup(strings.TrimSpace(tok))
	if st != tokenGood {
		tokenRefused(w, st)
		return
	}
	if _, ok := s.cfg.Users[ss.login]; !ok {
		tokenRefused(w, tokenUnknown)
		return
	}
	s.mu.Lock()
	// Sockets opened with the old token go on: only new uses need the
	// new one.
	s.forget(k)
	s.mu.Unlock()
	writeJSON(w, 200, s.issue(ss.login))
}

// logout serves auth/logout: the token is revoked, and the sockets opened
// with it are closed.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	_, k, st := s.lookup(strings.TrimSpace(tok))
	if st == tokenUnknown {
		tokenRefused(w, st)
		return
	}
	s.mu.Lock()
	s.revoke(k)
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) cti(w http.ResponseWriter, r *http.Request) {
	ss, k, st := s.lookup(r.URL.Query().Get("token"))
	if st != tokenGood {
		tokenRefused(w, st)
		return
	}
	u, ok := s.cfg.Users[ss.login]
	if !ok {
		tokenRefused(w, tokenUnknown)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.Origins})
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 10)
	sess := newConn(s, u, c)
	// Who asks, for the dial and forward services' audit lines and limits.
	ctx, cancel := context.WithCancel(actor.With(r.Context(), actor.Actor{Door: "xuc", Name: u.Login, Remote: r.RemoteAddr}))
	defer cancel()
	// A logout closes the socket (the token's session, if it is still
	// there: a refresh may have replaced it).
	s.mu.Lock()
	id := s.nextSocket
	s.nextSocket++
	if cur, ok := s.tokens[k]; ok && cur == ss {
		ss.sockets[id] = cancel
		defer func() {
			s.mu.Lock()
			delete(ss.sockets, id)
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	sess.run(ctx)
}

// hintOf finds the hint a number means: the extension's hint in this
// node's site, the first context by name when several have it.
func hintOf(states map[string]*hints.State, number, site string) (*hints.State, bool) {
	var best *hints.State
	for _, st := range states {
		if st.Exten != number || st.Site != site || st.Removed {
			continue
		}
		if best == nil || st.Context < best.Context {
			best = st
		}
	}
	return best, best != nil
}
