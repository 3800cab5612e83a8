package xuc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/internal/ratelimit"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func authServer(t *testing.T) (*Server, *httptest.Server, *clock) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("right-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hub := watch.New(watch.Config{})
	if err := hub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	s := New(Config{Users: map[string]User{"alice": {Login: "alice", Hash: hash, Extension: "1001"}}, Hub: hub,
		TokenTTL: time.Hour, Now: clk.Now, Log: zerolog.Nop()})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs, clk
}

type authAnswer struct {
	status     int
	retryAfter string
	Token      string `json:"token"`
	Error      string `json:"error"`
}

func call(t *testing.T, method, url, token, body string) authAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := authAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return a
}

func login(t *testing.T, base, password string) authAnswer {
	return call(t, "POST", base+PathLogin, "", `{"login":"alice","password":"`+password+`"}`)
}

// Tokens expire (TokenExpired on auth/check), a refresh revokes the token
// it replaces, a logout revokes the token and closes its sockets, and a
// login holds at most maxTokens.
func TestTokens(t *testing.T) {
	s, hs, clk := authServer(t)
	a := login(t, hs.URL, "right-password")
	if a.status != 200 || a.Token == "" {
		t.Fatalf("login: %+v", a)
	}
	// Refresh: a new token; the old one is no more.
	b := call(t, "GET", hs.URL+PathCheck, a.Token, "")
	if b.status != 200 || b.Token == "" || b.Token == a.Token {
		t.Fatalf("check: %+v", b)
	}
	if got := call(t, "GET", hs.URL+PathCheck, a.Token, ""); got.status != 401 || got.Error != "InvalidToken" {
		t.Fatalf("the refreshed token: %+v", got)
	}
	// Expiry.
	clk.add(time.Hour + time.Second)
	if got := call(t, "GET", hs.URL+PathCheck, b.Token, ""); got.status != 401 || got.Error != "TokenExpired" {
		t.Fatalf("an expired token: %+v", got)
	}
	// Logout closes the token's socket and revokes it.
	c := login(t, hs.URL, "right-password")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+PathCTI+"?token="+c.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil { // the first status message
		t.Fatal(err)
	}
	if got := call(t, "POST", hs.URL+PathLogout, c.Token, ""); got.status != 204 {
		t.Fatalf("logout: %+v", got)
	}
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the socket of a logged-out token stayed open")
			}
			break
		}
	}
	if got := call(t, "GET", hs.URL+PathCheck, c.Token, ""); got.status != 401 || got.Error != "InvalidToken" {
		t.Fatalf("a logged-out token: %+v", got)
	}
	// A cap per login: the oldest goes.
	var toks []string
	for range maxTokens + 1 {
		toks = append(toks, login(t, hs.URL, "right-password").Token)
	}
	if got := call(t, "GET", hs.URL+PathCheck, toks[0], ""); got.status != 401 {
		t.Fatalf("the oldest of %d tokens: %+v", maxTokens+1, got)
	}
	s.mu.Lock()
	n := len(s.byLogin["alice"])
	s.mu.Unlock()
	if n != maxTokens {
		t.Fatalf("alice holds %d tokens", n)
	}
}

// Guessing meets longer and longer waits, per login and per address, and
// the right password waits too while the login is held back.
func TestLoginBackoff(t *testing.T) {
	s, hs, clk := authServer(t)
	for i := range 5 {
		if got := login(t, hs.URL, "guess"); got.status != 401 || got.Error != "InvalidCredentials" {
			t.Fatalf("guess %d: %+v", i+1, got)
		}
	}
	if got := login(t, hs.URL, "guess"); got.status != 401 {
		t.Fatalf("the 6th guess: %+v", got)
	}
	got := login(t, hs.URL, "right-password")
	if got.status != 429 || got.Error != "TooManyAttempts" || got.retryAfter == "" {
		t.Fatalf("a login held back: %+v", got)
	}
	// Another login from the same address is held back too.
	if got := call(t, "POST", hs.URL+PathLogin, "", `{"login":"bob","password":"x"}`); got.status != 429 {
		t.Fatalf("another login from the guessing address: %+v", got)
	}
	clk.add(2 * time.Second)
	if got := login(t, hs.URL, "right-password"); got.status != 200 {
		t.Fatalf("after the wait: %+v", got)
	}
	if w := s.failures.Wait(ratelimit.LoginKeys("alice", "127.0.0.1:1")[0]); w != 0 {
		t.Fatalf("a success left the login held back %v", w)
	}
}
