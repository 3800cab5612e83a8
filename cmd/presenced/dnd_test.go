package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
)

// rest sends one API request and returns its status.
func (e *exactEnv) rest(method, path, body string) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.m.http.Addr().String()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// wsSet sets a presence over the WebSocket API and waits for its answer.
func (e *exactEnv) wsSet(user, state string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+e.m.http.Addr().String()+"/v1/ws", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"set","user":"`+user+`","state":"`+state+`"}`)); err != nil {
		e.t.Fatal(err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.Contains(string(b), `"type":"set"`) {
			return
		}
		if strings.Contains(string(b), `"type":"error"`) {
			e.t.Fatalf("ws set: %s", b)
		}
	}
}

// awaitDND waits until Asterisk's presence of user is in dnd or not as
// wanted, and its DND device BUSY or INVALID with it.
func (e *exactEnv) awaitDND(what, user string, on bool) {
	e.t.Helper()
	want := map[bool]string{true: "BUSY", false: "INVALID"}[on]
	st := func() string { s, _, _, _ := e.ast.Presence("CustomPresence:" + user); return s }
	testenv.Eventually(e.t, what, func() bool { return (st() == "dnd") == on && e.ari.Device(presence.DNDDevice(user)) == want },
		func() string {
			return fmt.Sprintf("presence %s, DND device %s; want dnd=%v, %s", st(), e.ari.Device(presence.DNDDevice(user)), on, want)
		})
}

// The DND device is BUSY exactly while the presence is dnd, whatever path
// put it there or took it away: every hook, a timer, REST (the board's
// path), WebSocket, a change made elsewhere. dnd/off leaves dnd however
// many dnd/on came before.
func TestDNDDeviceFollowsEveryPath(t *testing.T) {
	e := newExactEnv(t, true)
	into := []struct {
		name string
		do   func(u string)
	}{
		{"presence/set", func(u string) { e.hook("presence/set", u, "dnd", "", "meeting") }},
		{"dnd/on", func(u string) { e.hook("dnd/on", u) }},
		{"dnd/on twice", func(u string) { e.hook("dnd/on", u, "one"); e.hook("dnd/on", u, "two") }},
		{"dnd/toggle", func(u string) { e.hook("dnd/toggle", u) }},
		{"presence/toggle", func(u string) { e.hook("presence/toggle", u, "dnd") }},
		{"REST", func(u string) { e.rest("PUT", "/v1/presence/"+u, `{"state":"dnd"}`) }},
		{"WebSocket", func(u string) { e.wsSet(u, "dnd") }},
		{"elsewhere", func(u string) { e.ast.SetPresence("CustomPresence:"+u, "dnd", "", "set on a phone") }},
		{"restore", func(u string) {
			e.hook("presence/set", u, "dnd")
			e.hook("presence/set", u, "away")
			e.hook("presence/restore", u)
		}},
		{"timer", func(u string) {
			e.hook("presence/set", u, "dnd")
			e.hook("presence/set", u, "away", "", "", "1s")
			e.timersEnded(u)
		}},
	}
	out := []struct {
		name string
		do   func(u string)
	}{
		{"dnd/off", func(u string) { e.hook("dnd/off", u) }},
		{"dnd/off after dnd/on twice", func(u string) { e.hook("dnd/on", u, "again"); e.hook("dnd/off", u) }},
		{"dnd/toggle", func(u string) { e.hook("dnd/toggle", u) }},
		{"presence/set", func(u string) { e.hook("presence/set", u, "available") }},
		{"presence/restore", func(u string) { e.hook("presence/restore", u) }},
		{"REST", func(u string) { e.rest("PUT", "/v1/presence/"+u, `{"state":"away"}`) }},
		{"REST restore", func(u string) { e.rest("POST", "/v1/presence/"+u+"/restore", "") }},
		{"WebSocket", func(u string) { e.wsSet(u, "chat") }},
		{"elsewhere", func(u string) { e.ast.SetPresence("CustomPresence:"+u, "xa", "", "") }},
		{"timer", func(u string) {
			e.hook("presence/set", u, "dnd", "", "", "1s")
			e.timersEnded(u)
		}},
	}
	u := "1002"
	e.hook("presence/set", u, "available")
	e.awaitDND("start", u, false)
	for _, in := range into {
		in.do(u)
		e.awaitDND("into dnd by "+in.name, u, true)
		e.hook("presence/set", u, "available")
		e.awaitDND("out of dnd after "+in.name, u, false)
	}
	for _, o := range out {
		e.hook("presence/set", u, "available") // something to come back to
		if o.name != "timer" {
			e.hook("dnd/on", u)
			e.awaitDND("into dnd before "+o.name, u, true)
		}
		o.do(u)
		e.awaitDND("out of dnd by "+o.name, u, false)
	}
}

// A timed presence set over REST on top of a presence set elsewhere comes
// back to that one, not to what presenced last wrote.
func TestTimedRESTReturnsToPresenceSetElsewhere(t *testing.T) {
	e := newExactEnv(t, false)
	e.hook("presence/set", "1001", "available")
	e.ast.SetPresence("CustomPresence:1001", "chat", "", "set on the CLI")
	if st := e.rest("PUT", "/v1/presence/1001", `{"state":"away","message":"short break","for":"1s"}`); st != 200 {
		t.Fatalf("PUT: %d", st)
	}
	if st, _, _, _ := e.ast.Presence("CustomPresence:1001"); st != "away" {
		t.Fatalf("Asterisk holds %s", st)
	}
	testenv.Eventually(t, "Asterisk holding the CLI's chat after the timer", func() bool {
		st, _, msg, _ := e.ast.Presence("CustomPresence:1001")
		return st == "chat" && msg == "set on the CLI"
	}, func() string { st, _, msg, _ := e.ast.Presence("CustomPresence:1001"); return st + " " + msg })
	e.settle()
	if got := e.presenceEvents("CustomPresence:1001"); got[len(got)-1] != pv("chat", "", "set on the CLI") {
		t.Fatalf("the watcher ends with %q", got[len(got)-1])
	}
}
