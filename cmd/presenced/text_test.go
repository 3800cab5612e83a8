package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/presenced/presenced/internal/testenv"
)

// Text with quotes, an apostrophe, a question mark, backslashes, a tab, a
// line break and non-ASCII, set by a hook, over REST and elsewhere (the
// CLI), reads the same in REST, SSE, WebSocket and webhooks (the board
// reads SSE), under the one spelling of the provider.
func TestHostileTextReadsTheSameEverywhere(t *testing.T) {
	e := newExactEnv(t, false)
	base := "http://" + e.m.http.Addr().String()
	var mu sync.Mutex
	var hooked []map[string]any
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		hooked = append(hooked, m)
		mu.Unlock()
	}))
	defer target.Close()
	if st := e.rest("POST", "/v1/webhooks", `{"url":"`+target.URL+`","providers":["custompresence:1001"]}`); st != 201 {
		t.Fatalf("webhook: %d", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?providers=CUSTOMPRESENCE:1001", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := bufio.NewReader(resp.Body)
	ws, _, err := websocket.Dial(ctx, "ws://"+e.m.http.Addr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","providers":["CustomPresence:1001"]}`))
	// The subscription is in place once its snapshot came: a change made
	// before would be in the snapshot, not an event of its own.
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"type":"snapshot"`) {
			break
		}
	}

	type view struct{ provider, state, subtype, message string }
	fromJSON := func(provider any, p any) view {
		pm, _ := p.(map[string]any)
		s := func(k string) string { v, _ := pm[k].(string); return v }
		pr, _ := provider.(string)
		return view{pr, s("state"), s("subtype"), s("message")}
	}
	nextSSE := func(want view) {
		t.Helper()
		for {
			line, err := sse.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok || !strings.Contains(data, `"presence":{`) || strings.Contains(data, `"hints"`) {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("SSE %q: %v", data, err)
			}
			if got := fromJSON(m["provider"], m["presence"]); got == want {
				return
			} else if got.message != "" && got.message != want.message && strings.Contains(got.message, "hostile") {
				t.Fatalf("SSE shows %+v, want %+v", got, want)
			}
		}
	}
	nextWS := func(want view) {
		t.Helper()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["type"] != "presence" {
				continue
			}
			if got := fromJSON(m["provider"], m["presence"]); got == want {
				return
			} else if strings.Contains(got.message, "hostile") {
				t.Fatalf("WebSocket shows %+v, want %+v", got, want)
			}
		}
	}
	const sub = `Büro "日本" it's\ok?` + "\t(tab)"
	for _, set := range []struct {
		name string
		do   func(msg string)
	}{
		{"hook", func(msg string) { e.hook("presence/set", "1001", "away", sub, msg) }},
		{"REST", func(msg string) {
			b, _ := json.Marshal(map[string]string{"state": "away", "subtype": sub, "message": msg})
			if st := e.rest("PUT", "/v1/presence/1001", string(b)); st != 200 {
				t.Fatalf("PUT %d", st)
			}
		}},
		{"elsewhere", func(msg string) { e.ast.SetPresence("CustomPresence:1001", "away", sub, msg) }},
	} {
		msg := "hostile " + set.name + ` line1 "quoted" it's ok? C:\dir\n` + "\tTAB\nline2 ü 日本 ${SHELL(id)}, end"
		if set.name == "hook" {
			// A FastAGI argument cannot hold a line break: the AGI
			// environment is one line per argument.
			msg = strings.ReplaceAll(msg, "\n", " ")
		}
		set.do(msg)
		want := view{"CustomPresence:1001", "away", sub, msg}
		nextSSE(want)
		nextWS(want)
		e.settle()
		req, _ := http.NewRequest("GET", base+"/v1/presence/1001", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if v := fromJSON(got["provider"], got["presence"]); v != want {
			t.Fatalf("%s: REST shows %+v, want %+v", set.name, v, want)
		}
		testenv.Eventually(t, "the webhook", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, h := range hooked {
				if fromJSON(h["provider"], h["presence"]) == want {
					return true
				}
			}
			return false
		})
	}
	// Every webhook delivery is one of the three, in order, each once.
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, h := range hooked {
		if v := fromJSON(h["provider"], h["presence"]); strings.HasPrefix(v.message, "hostile") {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d webhook deliveries of the three changes: %v", n, hooked)
	}
}
