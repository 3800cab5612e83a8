package httpapi

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialWS(t *testing.T, url string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t, c}
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	if err := w.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) next() map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatal(err)
	}
	return m
}

func TestWebSocket(t *testing.T) {
	hub := watch.New(watch.Config{History: 1000})
	tb := hints.NewTable()
	st, _ := tb.Put(hints.Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001"}})
	hub.Append(change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
	fp := &fakePresence{vals: map[string]presence.Value{}}
	toks, _ := ParseTokens("read:"+readTok+",write:"+writeTok, nil)
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Hub: hub, Hints: tb, Presence: fp, Tokens: toks, Log: zerolog.Nop(),
		Forwards: forward.NewService(forward.Config{Store: memForwards{}})})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := "ws://" + s.Addr().String() + "/v1/ws?access_token="

	c := dialWS(t, url+readTok)
	c.send(map[string]any{"type": "ping"})
	if m := c.next(); m["type"] != "pong" {
		t.Fatalf("ping: %v", m)
	}
	c.send(map[string]any{"type": "subscribe", "hints": []string{"1001@internal"}})
	snap := c.next()
	if snap["type"] != "snapshot" || len(snap["hints"].([]any)) != 1 {
		t.Fatalf("snapshot %v", snap)
	}
	hub.Append(hintItem(tb, "1001", hints.Ringing)...)
	last := c.next()
	if last["type"] != "hint" || last["hint"].(map[string]any)["state"] != "Ringing" {
		t.Fatalf("change %v", last)
	}
	c.send(map[string]any{"type": "set", "user": "1001", "state": "away"})
	if m := c.next(); m["type"] != "error" || m["code"] != "FORBIDDEN" {
		t.Fatalf("set with a read token: %v", m)
	}
	c.c.Close(websocket.StatusNormalClosure, "")

	// 100 changes while away; resume from the last id.
	for i := range 100 {
		hub.Append(hintItem(tb, "1001", []hints.DeviceState{hints.InUse, hints.NotInUse}[i%2])...)
	}
	c = dialWS(t, url+writeTok)
	c.send(map[string]any{"type": "subscribe", "hints": []string{"1001@internal"}, "from": last["id"]})
	for i := range 100 {
		m := c.next()
		want := []string{"InUse", "Idle"}[i%2]
		if m["type"] != "hint" || m["hint"].(map[string]any)["state"] != want {
			t.Fatalf("missed change %d: %v, want %s", i, m, want)
		}
	}
	c.send(map[string]any{"type": "set", "user": "1001", "state": "dnd", "message": "meeting, room 2"})
	if m := c.next(); m["type"] != "set" || m["presence"].(map[string]any)["state"] != "dnd" {
		t.Fatalf("set: %v", m)
	}
	c.send(map[string]any{"type": "setForward", "user": "1001", "kind": "busy", "enabled": true, "destination": "0612345678"})
	if m := c.next(); m["type"] != "setForward" || m["forward"].(map[string]any)["busy"].(map[string]any)["destination"] != "0612345678" {
		t.Fatalf("setForward: %v", m)
	}
	for _, bad := range []map[string]any{{"type": "set", "user": "1001", "state": "busy"}, {"type": "subscribe"}, {"type": "dance"}, {"type": "set", "user": "a b", "state": "away"},
		{"type": "setForward", "user": "1001", "kind": "busy", "enabled": true, "destination": "${SHELL(id)}"},
		{"type": "setForward", "user": "1001", "kind": "busy"}, {"type": "setForward", "user": "1001", "kind": "busy", "enabled": true, "state": "away"}} {
		c.send(bad)
		if m := c.next(); m["type"] != "error" {
			t.Fatalf("%v: %v", bad, m)
		}
	}
	if err := c.c.Write(context.Background(), websocket.MessageText, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if m := c.next(); m["code"] != "INVALID_ARGUMENT" {
		t.Fatalf("not json: %v", m)
	}
	// A wrong token is refused before the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, url+"nope-nope-nope-nope", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("wrong token: %v", err)
	}
}

// memForwards is a forward.Store that keeps nothing.
type memForwards struct{}

func (memForwards) SaveForwards(context.Context, forward.Forwards) error    { return nil }
func (memForwards) AllForwards(context.Context) ([]forward.Forwards, error) { return nil, nil }
