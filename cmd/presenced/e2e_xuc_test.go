package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/views/xuc"
)

// xucClient is a client written from the xuc message shapes alone:
// {"claz":"web","command":...} out, {"msgType":...,"ctiMessage":{...}} in.
type xucClient struct {
	t  *testing.T
	c  *websocket.Conn
	in chan map[string]any
}

func dialXuc(t *testing.T, ctx context.Context, p *proc, token string) *xucClient {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://"+p.httpAddr+"/xuc/api/2.0/cti?token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := &xucClient{t: t, c: c, in: make(chan map[string]any, 200)}
	go func() {
		defer close(x.in)
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				x.in <- m
			}
		}
	}()
	return x
}

func (x *xucClient) send(m map[string]any) {
	x.t.Helper()
	data, _ := json.Marshal(m)
	if err := x.c.Write(context.Background(), websocket.MessageText, data); err != nil {
		x.t.Fatal(err)
	}
}

// await reads messages until one of msgType whose ctiMessage has every
// field given (compared as JSON text), and returns it.
func (x *xucClient) await(what, msgType string, fields map[string]any) map[string]any {
	x.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-x.in:
			if !ok {
				x.t.Fatalf("%s: the connection closed", what)
			}
			if m["msgType"] != msgType {
				continue
			}
			cm, _ := m["ctiMessage"].(map[string]any)
			all := true
			for k, v := range fields {
				a, _ := json.Marshal(cm[k])
				b, _ := json.Marshal(v)
				all = all && string(a) == string(b)
			}
			if all {
				return cm
			}
		case <-timeout:
			x.t.Fatalf("%s: no %s with %v", what, msgType, fields)
		}
	}
}

func xucLogin(t *testing.T, p *proc, body string) (int, map[string]any) {
	t.Helper()
	code, out := p.post(t, "/xuc/api/2.0/auth/login", body)
	var m map[string]any
	_ = json.Unmarshal([]byte(out), &m)
	return code, m
}

// The xuc Phone API, end to end against an emulated Asterisk (AMI): login
// (wrong passwords and tokens refused), subscribeToPhoneHints with
// initial statuses (an unknown number UNEXISTING), a device change, DND on
// and off reaching Asterisk's CustomPresence, the phone events of the
// recorded call, dial (AMI Originate), a forward set and read back by the
// dialplan's forward/get hook, a voicemail count change, ping, and errors
// for anything else.
func TestBinaryXuc(t *testing.T) {
	bin := buildBinary(t)
	ariSrv, srv := fakeAsterisk(t)
	ast := ariSrv.Ast
	ariSrv.SetDevice("PJSIP/1001", "NOT_INUSE")
	ariSrv.SetDevice("PJSIP/1002", "NOT_INUSE")
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"},
		amitest.Hint{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", StatusText: "Idle"})
	srv.SetMailbox("1002@default", 0, 0)
	srv.SetDialable("internal", "0427466347")
	hash, err := xuc.HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "xuc-users")
	if err := os.WriteFile(users, []byte("# login:hash:extension\nbob:"+hash+":1002\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, append(ariLogin(ariSrv), "PRESENCED_XUC_USERS="+users, "PRESENCED_DIAL_CONTEXT=internal")...)...)
	defer p.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, bad := range []string{`{"login":"bob","password":"wrong"}`, `{"login":"eve","password":"s3cret"}`, `{"login":"bob"}`, `not json`} {
		if code, m := xucLogin(t, p, bad); code == 200 || m["token"] != nil {
			t.Fatalf("login %s: %d %v", bad, code, m)
		}
	}
	code, m := xucLogin(t, p, `{"login":"bob","password":"s3cret"}`)
	token, _ := m["token"].(string)
	if code != 200 || m["login"] != "bob" || len(token) < 32 {
		t.Fatalf("login: %d %v", code, m)
	}
	// auth/check swaps the token for a fresh one; the old one is revoked.
	req, _ := http.NewRequest("GET", "http://"+p.httpAddr+"/xuc/api/2.0/auth/check", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("check: %v %v", resp, err)
	}
	var fresh map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&fresh)
	resp.Body.Close()
	old := token
	if token, _ = fresh["token"].(string); len(token) < 32 || token == old {
		t.Fatalf("check gave %v", fresh)
	}
	for _, bad := range []string{old, "x" + token} {
		req.Header.Set("Authorization", "Bearer "+bad)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
			t.Fatalf("check with a revoked or wrong token: %v %v", resp, err)
		}
	}
	if _, resp, err := websocket.Dial(ctx, "ws://"+p.httpAddr+"/xuc/api/2.0/cti?token=nope", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("cti with a wrong token: %v", err)
	}

	// Wait until AMI has given the hints (the first snapshot may come before).
	testenv.Eventually(t, "hints from AMI", func() bool {
		code, body := p.get(t, "/v1/hints/1002@internal")
		return code == 200 && strings.Contains(body, `"state":"Idle"`)
	})
	x := dialXuc(t, ctx, p, token)
	x.await("the user's config", "UserConfigUpdate", map[string]any{"userId": "bob", "dndEnabled": false, "lineNumber": "1002"})
	x.await("the phone's status", "PhoneStatusUpdate", map[string]any{"status": "AVAILABLE"})
	x.await("the voicemail", "VoiceMailStatusUpdate", map[string]any{"voiceMailId": "1002@default", "newMessages": 0})

	x.send(map[string]any{"claz": "web", "command": "subscribeToPhoneHints", "phoneNumbers": []string{"1001", "1005"}})
	x.await("1001 at once", "PhoneHintStatusEvent", map[string]any{"number": "1001", "status": 0})
	x.await("1005, unknown", "PhoneHintStatusEvent", map[string]any{"number": "1005", "status": -2})
	ariSrv.SetDevice("PJSIP/1001", "RINGING")
	x.await("1001 rings", "PhoneHintStatusEvent", map[string]any{"number": "1001", "status": 8})
	ariSrv.SetDevice("PJSIP/1001", "INUSE")
	x.await("1001 answers", "PhoneHintStatusEvent", map[string]any{"number": "1001", "status": 1})
	ariSrv.SetDevice("PJSIP/1002", "UNAVAILABLE")
	x.await("bob's phone away", "PhoneStatusUpdate", map[string]any{"status": "INDISPONIBLE"})
	ariSrv.SetDevice("PJSIP/1002", "NOT_INUSE")
	x.await("bob's phone back", "PhoneStatusUpdate", map[string]any{"status": "AVAILABLE"})

	// DND reaches Asterisk (CustomPresence:1002), and comes back as config.
	x.send(map[string]any{"claz": "web", "command": "dnd", "state": true})
	x.await("dnd on", "UserConfigUpdate", map[string]any{"dndEnabled": true})
	if st, _, _, _ := ast.Presence("CustomPresence:1002"); st != "dnd" {
		t.Fatalf("Asterisk's presence of 1002 after dnd on: %q", st)
	}
	x.send(map[string]any{"claz": "web", "command": "dnd", "state": false})
	x.await("dnd off", "UserConfigUpdate", map[string]any{"dndEnabled": false})
	if st, _, _, _ := ast.Presence("CustomPresence:1002"); st == "dnd" {
		t.Fatal("Asterisk's presence of 1002 still dnd")
	}

	// The recorded call: 1001 calls 1002 (bob), 1002 answers, holds, hangs up.
	keep := map[string]bool{"Newchannel": true, "Newstate": true, "NewConnectedLine": true, "NewCallerid": true, "Hold": true, "Unhold": true, "Hangup": true, "VarSet": true}
	srv.Call(recordedFrames(t, "S1: 1001 (pjsua) calls 1002", "CoreShowChannels (S1-ringing)", keep)...)
	ring := x.await("ringing", "PhoneEvent", map[string]any{"eventType": "EventRinging", "DN": "1002", "otherDN": "1001", "otherDName": "User 1001", "callDirection": "Incoming", "username": "bob"})
	srv.Call(recordedFrames(t, "CoreShowChannels (S1-ringing)", "CoreShowChannels (S1-answered)", keep)...)
	x.await("answered", "PhoneEvent", map[string]any{"eventType": "EventEstablished", "uniqueId": ring["uniqueId"], "linkedId": ring["linkedId"]})
	srv.Call(recordedFrames(t, "S1: 1002 (pjsua) presses H", "CoreShowChannels (S1-held)", keep)...)
	x.await("held", "PhoneEvent", map[string]any{"eventType": "EventOnHold", "uniqueId": ring["uniqueId"]})
	srv.Call(recordedFrames(t, "S1: 1001 hangs up", "S2:", keep)...)
	x.await("released", "PhoneEvent", map[string]any{"eventType": "EventReleased", "uniqueId": ring["uniqueId"]})

	// Dial: an Originate ringing bob's phone, then the number.
	x.send(map[string]any{"claz": "web", "command": "dial", "destination": "0427466347", "variables": map[string]any{}})
	testenv.Eventually(t, "the Originate of the dial", func() bool {
		o := srv.Originates()
		return len(o) == 1 && o[0]["channel"] == "PJSIP/1002" && o[0]["exten"] == "0427466347" && o[0]["context"] == "internal"
	}, func() string { return fmt.Sprint(srv.Originates()) })
	for _, bad := range []string{"${SHELL(id)}", "1001&PJSIP/evil", "1\r\n2"} {
		x.send(map[string]any{"claz": "web", "command": "dial", "destination": bad})
		x.await("a hostile number", "Error", map[string]any{"code": "INVALID_ARGUMENT", "command": "dial"})
	}
	if n := len(srv.Originates()); n != 1 {
		t.Fatalf("%d originates after hostile numbers", n)
	}

	// A forward set from xuc, read back by the dialplan.
	x.send(map[string]any{"claz": "web", "command": "naFwd", "destination": "0612345678", "state": true})
	x.await("naFwd", "UserConfigUpdate", map[string]any{"naFwdEnabled": true, "naFwdDestination": "0612345678"})
	c := p.hook(t, ast, "forward/get", "1002")
	if c.Var("PRESENCED_FWD_NOANSWER") != "0612345678" || c.Var("PRESENCED_FWD_UNCONDITIONAL") != "" {
		t.Fatalf("forward/get: %v", c.Vars())
	}
	x.send(map[string]any{"claz": "web", "command": "uncFwd", "destination": "${SHELL(id)}", "state": true})
	x.await("a hostile forward", "Error", map[string]any{"code": "INVALID_ARGUMENT", "command": "uncFwd"})

	// Voicemail.
	srv.SetMailbox("1002@default", 2, 1)
	x.await("a message", "VoiceMailStatusUpdate", map[string]any{"newMessages": 2, "waitingMessages": 1, "oldMessages": 1})

	// Ping, and anything else.
	x.send(map[string]any{"claz": "ping"})
	x.await("pong", "Pong", nil)
	x.send(map[string]any{"claz": "web", "command": "makeCoffee"})
	x.await("an unknown command", "Error", map[string]any{"code": "INVALID_ARGUMENT", "command": "makeCoffee"})
	x.send(map[string]any{"claz": "web", "command": "subscribeToPhoneHints", "phoneNumbers": []string{"1001&PJSIP/evil"}})
	x.await("a hostile number to watch", "Error", map[string]any{"code": "INVALID_ARGUMENT"})
	if err := x.c.Write(ctx, websocket.MessageText, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	x.await("not JSON", "Error", map[string]any{"code": "INVALID_ARGUMENT"})
	_ = x.c.Close(websocket.StatusNormalClosure, "")
}
