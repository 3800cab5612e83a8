package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/internal/astemu"
)

// The binary's HTTP surfaces, used as clients would: a token, REST, an SSE
// stream and a WebSocket that see a hook's change.
func TestBinaryHTTP(t *testing.T) {
	bin := buildBinary(t)
	conf := filepath.Join(t.TempDir(), "extensions.conf")
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tok = "writer-token-0123456789"
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_DIALPLAN="+conf, "PRESENCED_API_TOKENS=write:"+tok)
	base := "http://" + p.httpAddr
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := call("GET", "/v1/hints/1001@internal", ""); st != 200 || !strings.Contains(body, `"state":"Idle"`) {
		t.Fatalf("GET hint: %d %s", st, body)
	}
	if st, _ := http.Get(base + "/v1/hints"); st.StatusCode != 401 {
		t.Fatalf("no token: %d", st.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?hints=1001@internal&access_token="+tok, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := bufio.NewReader(resp.Body)
	ws, _, err := websocket.Dial(ctx, "ws://"+p.httpAddr+"/v1/ws?access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","hints":["1001@internal"]}`))
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"type":"snapshot"`) {
		t.Fatalf("ws snapshot: %s %v", b, err)
	}

	// A hook changes the presence: both watchers see the hint change.
	if c := p.hook(t, astemu.New(), "presence/set", "", "dnd", "", "in a meeting"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("hook: %v", c.Vars())
	}
	for {
		line, err := sse.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"message":"in a meeting"`) {
			break
		}
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["type"] == "hint" && strings.Contains(string(b), "in a meeting") {
			break
		}
	}
	// Without AMI a REST write waits for Asterisk: 202, pending.
	if st, body := call("PUT", "/v1/presence/1001", `{"state":"available"}`); st != 202 || !strings.Contains(body, `"pending":true`) {
		t.Fatalf("PUT: %d %s", st, body)
	}
	cancel()
	p.stop(t)
}
