package xuc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/presenced/presenced/forward"
	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/watch"
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
	cfg    Config
	mu     sync.Mutex
	tokens map[string]session
	// dummy is compared with for an unknown login, so that a login's
	// existence does not show in the time an answer takes.
	dummy []byte
	// hashing bounds the bcrypt comparisons running at once: each costs
	// tens of milliseconds of CPU, and a flood of logins must not take
	// the hooks' CPU.
	hashing chan struct{}
}

type session struct {
	login   string
	expires time.Time
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
	return &Server{cfg: cfg, tokens: map[string]session{}, dummy: dummy, hashing: make(chan struct{}, 2)}
}

// The paths served.
const (
	PathLogin = "/xuc/api/2.0/auth/login"
	PathCheck = "/xuc/api/2.0/auth/check"
	PathCTI   = "/xuc/api/2.0/cti"
)

// Handler serves the login, the token check and the WebSocket.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathLogin, s.login)
	mux.HandleFunc("GET "+PathCheck, s.check)
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
		s.cfg.Log.Warn().Str("login", clipLogin(req.Login)).Msg("xuc login refused")
		writeJSON(w, 401, authError{"InvalidCredentials", "wrong login or password"})
		return
	}
	writeJSON(w, 200, s.issue(u.Login))
}

func clipLogin(l string) string {
	if len(l) > 64 {
		return l[:64]
	}
	return l
}

func (s *Server) issue(login string) loginAnswer {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ss := range s.tokens {
		if now.After(ss.expires) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = session{login: login, expires: now.Add(s.cfg.TokenTTL)}
	return loginAnswer{Login: login, Token: tok, TTL: int(s.cfg.TokenTTL / time.Second)}
}

// userOf returns the user of a token still good.
func (s *Server) userOf(tok string) (User, bool) {
	if tok == "" {
		return User{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ss := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
			if s.cfg.Now().After(ss.expires) {
				delete(s.tokens, t)
				return User{}, false
			}
			u, ok := s.cfg.Users[ss.login]
			return u, ok
		}
	}
	return User{}, false
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	u, good := s.userOf(strings.TrimSpace(tok))
	if !ok || !good {
		writeJSON(w, 401, authError{"InvalidToken", "the token is wrong or has expired: log in again"})
		return
	}
	writeJSON(w, 200, s.issue(u.Login))
}

func (s *Server) cti(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userOf(r.URL.Query().Get("token"))
	if !ok {
		writeJSON(w, 401, authError{"InvalidToken", "the token is wrong or has expired: log in again"})
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.Origins})
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 10)
	sess := newConn(s, u, c)
	// Who asks, for the dial and forward services' audit lines and limits.
	sess.run(actor.With(r.Context(), actor.Actor{Door: "xuc", Name: u.Login, Remote: r.RemoteAddr}))
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
