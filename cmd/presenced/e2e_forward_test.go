package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/astemu"
)

// do sends a request (a JSON body unless empty, a bearer token unless
// empty) and returns the status and the body.
func (p *proc) do(t *testing.T, method, path, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.httpAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// put sends a JSON body with PUT.
func (p *proc) put(t *testing.T, path, body string) (int, string) {
	t.Helper()
	return p.do(t, "PUT", path, body, "")
}

// Call forwards: set over REST, seen once by a watcher ("forward" event),
// read by the dialplan's forward/get hook, set by a feature code's
// forward/set hook; hostile destinations refused everywhere; a kill -9
// loses none of it, and the next watcher's snapshot has them.
func TestBinaryForwards(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ast := astemu.New()
	p := startBinary(t, bin, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := watchSSE(t, ctx, p)
	next := func(what string) sseEvent {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.event == "snapshot" {
					continue
				}
				return ev
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no event", what)
			}
		}
	}
	if code, body := p.put(t, "/v1/forwards/1001/busy", `{"enabled":true,"destination":"0612345678"}`); code != 200 ||
		!strings.Contains(body, `"busy":{"enabled":true,"destination":"0612345678"}`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if ev := next("the forward"); ev.event != "forward" || ev.data != `{"user":"1001","unconditional":{"enabled":false},"busy":{"enabled":true,"destination":"0612345678"},"noanswer":{"enabled":false}}` {
		t.Fatalf("event %s %s", ev.event, ev.data)
	}
	for _, bad := range []string{`{"enabled":true,"destination":"${SHELL(id)}"}`, `{"enabled":true,"destination":"1001&PJSIP/evil"}`, `{"enabled":true,"destination":"1\r\n2"}`, `{"destination":"2002"}`, `{"enabled":true,"destination":"2002","x":1}`} {
		if code, body := p.put(t, "/v1/forwards/1001/noanswer", bad); code != 400 {
			t.Errorf("PUT %s: %d %s", bad, code, body)
		}
	}
	if code, _ := p.put(t, "/v1/forwards/1001/sometimes", `{"enabled":true,"destination":"2002"}`); code != 400 {
		t.Errorf("unknown kind: %d", code)
	}
	// Feature codes (a forward to *721001 would move 1001's own forward at
	// every forwarded call) are refused by the dial policy, from REST and
	// from a hook.
	for _, code := range []string{"*721001", "*78", "#"} {
		if st, body := p.put(t, "/v1/forwards/1001/noanswer", `{"enabled":true,"destination":"`+code+`"}`); st != 403 || !strings.Contains(body, "NOT_ALLOWED") {
			t.Errorf("PUT a forward to %s: %d %s", code, st, body)
		}
	}
	if c := p.hook(t, ast, "forward/set", "1001", "noanswer", "*721001"); c.Var("PRESENCED_ERROR") != "NOT_ALLOWED" {
		t.Errorf("a hook forwarding to a feature code: %v", c.Vars())
	}
	c := p.hook(t, ast, "forward/get", "1001")
	if c.Var("PRESENCED_RESULT") != "OK" || c.Var("PRESENCED_FWD_BUSY") != "0612345678" || c.Var("PRESENCED_FWD_UNCONDITIONAL") != "" {
		t.Fatalf("forward/get: %v", c.Vars())
	}
	// A feature code (*72<number>) on 1001's phone: the caller is the user.
	c = p.hook(t, ast, "forward/set", "", "unconditional", "2002")
	if c.Var("PRESENCED_RESULT") != "OK" || c.Var("PRESENCED_FWD_UNCONDITIONAL") != "2002" {
		t.Fatalf("forward/set: %v", c.Vars())
	}
	if ev := next("the feature code"); ev.event != "forward" || !strings.Contains(ev.data, `"unconditional":{"enabled":true,"destination":"2002"}`) {
		t.Fatalf("event %s %s", ev.event, ev.data)
	}
	if c := p.hook(t, ast, "forward/set", "", "noanswer", "${SHELL(id)}"); c.Var("PRESENCED_ERROR") != "INVALID_ARGUMENT" {
		t.Fatalf("hostile forward/set: %v", c.Vars())
	}
	select {
	case ev := <-events:
		t.Fatalf("an event for refused changes: %s %s", ev.event, ev.data)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	// kill -9, then start again on the same data.
	_ = p.cmd.Process.Kill()
	<-p.done
	p = startBinary(t, bin, dir)
	defer p.stop(t)
	c = p.hook(t, ast, "forward/get", "1001")
	if c.Var("PRESENCED_FWD_UNCONDITIONAL") != "2002" || c.Var("PRESENCED_FWD_BUSY") != "0612345678" {
		t.Fatalf("after kill -9: %v", c.Vars())
	}
	if code, body := p.get(t, "/v1/forwards/1001"); code != 200 || body != `{"user":"1001","unconditional":{"enabled":true,"destination":"2002"},"busy":{"enabled":true,"destination":"0612345678"},"noanswer":{"enabled":false}}`+"\n" {
		t.Fatalf("GET: %d %s", code, body)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	select {
	case ev := <-watchSSE(t, ctx2, p):
		if ev.event != "snapshot" || !strings.Contains(ev.data, `"forwards":[{"user":"1001","unconditional":{"enabled":true,"destination":"2002"}`) {
			t.Fatalf("snapshot %s %s", ev.event, ev.data)
		}
	case <-ctx2.Done():
		t.Fatal("no snapshot")
	}
}
