package appws

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/watch"
)

type testClient struct {
	t   *testing.T
	ctx context.Context
	c   *websocket.Conn
}

func dialApp(t *testing.T, url string) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &testClient{t: t, ctx: ctx, c: c}
}

func (tc *testClient) send(m map[string]any) {
	data, _ := json.Marshal(m)
	if err := tc.c.Write(tc.ctx, websocket.MessageText, data); err != nil {
		tc.t.Fatal(err)
	}
}

// recv returns the next message of type mt, skipping others; nil when
// the socket closed.
func (tc *testClient) recv(mt string) map[string]any {
	for {
		_, data, err := tc.c.Read(tc.ctx)
		if err != nil {
			if tc.ctx.Err() != nil {
				tc.t.Fatal("no answer")
			}
			return nil
		}
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		if m["mt"] == mt {
			return m
		}
	}
}

func (tc *testClient) login(password string) map[string]any {
	tc.send(map[string]any{"mt": "AppChallenge"})
	ch, _ := tc.recv("AppChallengeResult")["challenge"].(string)
	tc.send(map[string]any{"mt": "AppLogin", "app": "board", "domain": "example.com", "sip": "admin", "guid": "", "dn": "Admin",
		"digest": Digest("board", "example.com", "admin", "", "Admin", nil, ch, password)})
	return tc.recv("AppLoginResult")
}

func appServer(t *testing.T) *httptest.Server {
	hub := watch.New(watch.Config{})
	if err := hub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	hs := httptest.NewServer(New(Config{Apps: map[string]string{"board": "right"}, Hub: hub, Log: zerolog.Nop(),
		Now: func() time.Time { return time.Unix(1_700_000_000, 0) }}).Handler())
	t.Cleanup(hs.Close)
	return hs
}

// A socket that fails to log in a few times is closed; a failed re-login
// leaves the socket logged out; guessing across sockets is held back.
func TestAppLoginFailures(t *testing.T) {
	hs := appServer(t)
	c := dialApp(t, hs.URL)
	if m := c.login("right"); m["ok"] != true {
		t.Fatalf("login: %v", m)
	}
	c.send(map[string]any{"api": "PbxApi", "mt": "SubscribePresence", "sip": "1001"})
	if m := c.recv("SubscribePresenceResult"); m["error"] != nil {
		t.Fatalf("subscribe: %v", m)
	}
	if m := c.login("wrong"); m["ok"] != false {
		t.Fatalf("a wrong re-login: %v", m)
	}
	c.send(map[string]any{"api": "PbxApi", "mt": "SubscribePresence", "sip": "1002"})
	if m := c.recv("SubscribePresenceResult"); m == nil || m["errorCode"] != "UNAUTHENTICATED" {
		t.Fatalf("after a failed re-login the socket is still logged in: %v", m)
	}

	c = dialApp(t, hs.URL)
	for i := range maxSocketFailures {
		if m := c.login("wrong"); m == nil || m["ok"] != false {
			t.Fatalf("failure %d: %v", i+1, m)
		}
	}
	if m := c.recv("AppChallengeResult"); m != nil {
		t.Fatal("the socket stayed open after its failed logins")
	}
	// 1 + 3 failures from this address; the fifth is free, the sixth
	// locks: the next login, even the right one, is refused and closed.
	c = dialApp(t, hs.URL)
	c.login("wrong")
	c.login("wrong")
	c = dialApp(t, hs.URL)
	m := c.login("right")
	if m == nil || m["ok"] != false || m["errorCode"] != "RATE_LIMITED" {
		t.Fatalf("a login while held back: %v", m)
	}
	if m := c.recv("AppChallengeResult"); m != nil {
		t.Fatal("the socket stayed open after a held-back login")
	}
}
