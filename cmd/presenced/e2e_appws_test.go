package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/views/appws"
)

// Innovaphone-style app logins, end to end against an emulated Asterisk
// (AMI): a message before the login closes the socket; a wrong digest is
// refused; the right one (challenge, then AppLogin) logs in; a
// SubscribePresence gets its result and the current state; a SetPresence
// reaches Asterisk's CustomPresence and comes back as a PresenceUpdate; a
// change made in Asterisk is a PresenceUpdate; an unknown activity and an
// unknown message are answered with an error; src is echoed throughout.
func TestBinaryAppWebsocket(t *testing.T) {
	bin := buildBinary(t)
	ast, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"})
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.WriteFile(apps, []byte("pbxadminapi:pwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, "PRESENCED_APPWS_APPS="+apps)...)
	defer p.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testenv.Eventually(t, "ready", func() bool { code, _ := p.get(t, "/readyz"); return code == 200 })
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, "ws://"+p.httpAddr+"/appws", nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	send := func(c *websocket.Conn, m map[string]any) {
		t.Helper()
		data, _ := json.Marshal(m)
		if err := c.Write(ctx, websocket.MessageText, data); err != nil {
			t.Fatal(err)
		}
	}
	// recv returns the next message of type mt, keeping the others for
	// later calls (an update may come before the result of the set that
	// made it).
	var kept []map[string]any
	recv := func(c *websocket.Conn, mt string) map[string]any {
		t.Helper()
		for i, m := range kept {
			if m["mt"] == mt {
				kept = append(kept[:i:i], kept[i+1:]...)
				return m
			}
		}
		for {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			_, data, err := c.Read(rctx)
			rcancel()
			if err != nil {
				t.Fatalf("waiting for %s: %v", mt, err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			if m["mt"] == mt {
				return m
			}
			kept = append(kept, m)
		}
	}
	// Before a login: answered, then closed.
	c := dial()
	send(c, map[string]any{"mt": "SubscribePresence", "sip": "1001"})
	if m := recv(c, "SubscribePresenceResult"); m["errorCode"] != "UNAUTHENTICATED" {
		t.Fatalf("before login: %v", m)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("not closed: %v", err)
	}

	c = dial()
	defer c.CloseNow()
	login := func(password string) bool {
		send(c, map[string]any{"mt": "AppChallenge"})
		ch, _ := recv(c, "AppChallengeResult")["challenge"].(string)
		info := json.RawMessage(`{"appobj":"presence", "n": 1}`)
		send(c, map[string]any{"mt": "AppLogin", "app": "pbxadminapi", "domain": "example.com", "sip": "admin", "guid": "", "dn": "Admin",
			"info": info, "digest": appws.Digest("pbxadminapi", "example.com", "admin", "", "Admin", info, ch, password), "src": "login"})
		m := recv(c, "AppLoginResult")
		if m["src"] != "login" {
			t.Fatalf("src not echoed: %v", m)
		}
		return m["ok"] == true
	}
	if login("wrong") {
		t.Fatal("a wrong digest logged in")
	}
	if !login("pwd") {
		t.Fatal("the right digest was refused")
	}
	send(c, map[string]any{"api": "PbxApi", "mt": "SubscribePresence", "sip": "1001", "src": "sub1"})
	if m := recv(c, "SubscribePresenceResult"); m["src"] != "sub1" || m["api"] != "PbxApi" || m["error"] != nil {
		t.Fatalf("subscribe: %v", m)
	}
	recv(c, "PresenceState")
	send(c, map[string]any{"api": "PbxApi", "mt": "SetPresence", "sip": "1001", "activity": "lunch", "note": "back at 2", "src": 7})
	if m := recv(c, "SetPresenceResult"); m["src"] != float64(7) || m["error"] != nil {
		t.Fatalf("set: %v", m)
	}
	if st, sub, msg, _ := ast.Presence("CustomPresence:1001"); st != "away" || sub != "lunch" || msg != "back at 2" {
		t.Fatalf("Asterisk holds %q %q %q", st, sub, msg)
	}
	m := recv(c, "PresenceUpdate")
	pr := m["presence"].([]any)[0].(map[string]any)
	if m["src"] != "sub1" || m["sip"] != "1001" || pr["activity"] != "lunch" || pr["note"] != "back at 2" || pr["status"] != "open" {
		t.Fatalf("update: %v", m)
	}
	// A change made in Asterisk (another app, the dialplan).
	srv.SetPresence("CustomPresence:1001", amitest.Presence{State: "dnd", Message: "focus"})
	m = recv(c, "PresenceUpdate")
	if pr := m["presence"].([]any)[0].(map[string]any); pr["activity"] != "dnd" || pr["note"] != "focus" {
		t.Fatalf("update from Asterisk: %v", m)
	}
	send(c, map[string]any{"mt": "SetPresence", "sip": "1001", "activity": "sleeping", "src": "s"})
	if m := recv(c, "SetPresenceResult"); m["error"] == nil || m["errorCode"] != "INVALID_STATE" {
		t.Fatalf("unknown activity: %v", m)
	}
	send(c, map[string]any{"mt": "SetPresence", "sip": "1001&PJSIP/evil", "activity": "away"})
	if m := recv(c, "SetPresenceResult"); m["errorCode"] != "INVALID_USER" {
		t.Fatalf("hostile user: %v", m)
	}
	send(c, map[string]any{"mt": "MakeCoffee", "src": "k"})
	if m := recv(c, "MakeCoffeeResult"); m["error"] == nil || m["src"] != "k" {
		t.Fatalf("unknown message: %v", m)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("{nope")); err != nil {
		t.Fatal(err)
	}
	recv(c, "Error")
}
