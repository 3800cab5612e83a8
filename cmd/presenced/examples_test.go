package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// needTool skips a test whose tool is missing, unless
// PRESENCED_EXAMPLE_TESTS=require (as .ci/run sets it, after installing
// them): then it fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PRESENCED_EXAMPLE_TESTS") == "require" {
			t.Fatalf("PRESENCED_EXAMPLE_TESTS=require but %s is missing", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func exampleConf(t *testing.T) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "extensions.conf")
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// examples/curl.sh runs from start to end against the binary.
func TestExampleCurlWalkthrough(t *testing.T) {
	bash := needTool(t, "bash")
	needTool(t, "curl")
	bin := buildBinary(t)
	const tok = "admin-token-example-0123"
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_DIALPLAN="+exampleConf(t), "PRESENCED_API_TOKENS=admin:walkthrough:"+tok)
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	cmd := exec.Command(bash, "../../examples/curl.sh")
	cmd.Env = append(os.Environ(), "PRESENCED_URL=http://"+p.httpAddr, "PRESENCED_TOKEN="+tok, "WEBHOOK_URL="+target.URL+"/in")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl.sh: %v\n%s", err, out)
	}
	for _, want := range []string{`"scope":"admin"`, `"exten":"1001"`, `"state":"away","message":"Lunch"`, `"delivered":true`, "== Done"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("curl.sh output lacks %s:\n%s", want, out)
		}
	}
	if code, body := p.get(t, "/v1/presence/1001"); code != 401 || strings.Contains(body, "Lunch") {
		t.Fatalf("without a token: %d %s", code, body)
	}
	if !strings.Contains(p.logText(), `"token":"walkthrough"`) {
		t.Error("the walkthrough's writes are not in the audit log")
	}
}

// examples/webhook-receiver/receiver.py accepts presenced's signed
// deliveries and refuses a forged one.
func TestExampleWebhookReceiver(t *testing.T) {
	python := needTool(t, "python3")
	bin := buildBinary(t)
	const secret = "receiver-secret-0123456789"
	rx := exec.Command(python, "../../examples/webhook-receiver/receiver.py", "--listen", "127.0.0.1:0")
	rx.Env = append(os.Environ(), "PRESENCED_WEBHOOK_SECRET="+secret)
	stdout, _ := rx.StdoutPipe()
	stderr, _ := rx.StderrPipe()
	if err := rx.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rx.Process.Kill(); _ = rx.Wait() }()
	errLines := bufio.NewScanner(stderr)
	if !errLines.Scan() {
		t.Fatal("the receiver said nothing")
	}
	addr, ok := strings.CutPrefix(errLines.Text(), "listening on ")
	if !ok {
		t.Fatalf("receiver: %s", errLines.Text())
	}
	rejected := make(chan string, 10)
	go func() {
		for errLines.Scan() {
			rejected <- errLines.Text()
		}
	}()
	events := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_DIALPLAN="+exampleConf(t))
	var out, errOut strings.Builder
	if code := run([]string{"webhooks", "add", "http://" + addr + "/presenced", "--providers", "CustomPresence:1001", "--secret", secret},
		[]string{"PRESENCED_URL=http://" + p.httpAddr}, &out, &errOut); code != 0 {
		t.Fatalf("webhooks add: %d %s", code, errOut.String())
	}
	p.hook(t, astemu.New(), "presence/set", "1001", "dnd", "", "Signed")
	deadline := time.After(20 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-events:
			pr, _ := ev["presence"].(map[string]any)
			got = ev["type"] == "presence" && pr["message"] == "Signed"
		case <-deadline:
			t.Fatal("the receiver printed no verified event")
		}
	}
	// A forged delivery: right shape, wrong secret.
	body := []byte(`{"id":"999","type":"presence","provider":"CustomPresence:1001","presence":{"state":"available"}}`)
	ts := time.Now().Unix()
	req, _ := http.NewRequest("POST", "http://"+addr+"/presenced", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Presenced-Timestamp", fmt.Sprint(ts))
	req.Header.Set("Presenced-Event-Id", "999")
	req.Header.Set("Presenced-Signature", "v1=00"+strings.Repeat("ab", 31))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("forged delivery: %d", resp.StatusCode)
	}
	select {
	case line := <-rejected:
		if !strings.Contains(line, "rejected") {
			t.Fatalf("receiver: %s", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the forged delivery was not reported")
	}
	select {
	case ev := <-events:
		if ev["id"] == "999" {
			t.Fatal("the forged delivery was printed")
		}
	default:
	}
}

// examples/browser, served from its own origin, watches presenced over
// SSE and WebSocket, and both resume after presenced restarts: what
// changed while it was away arrives, without a new snapshot.
func TestExampleBrowserPage(t *testing.T) {
	testenv.Long(t)
	b := browser(t)
	bin := buildBinary(t)
	site := httptest.NewServer(http.FileServer(http.Dir("../../examples/browser")))
	defer site.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	const tok = "page-reader-token-0123456789"
	env := []string{"PRESENCED_HTTP_LISTEN=" + httpAddr, "PRESENCED_API_TOKENS=read:page:" + tok, "PRESENCED_DIALPLAN=" + exampleConf(t),
		"PRESENCED_HTTP_ALLOWED_ORIGINS=" + site.URL}
	data := t.TempDir()
	p := startBinary(t, bin, data, env...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	page, err := b.Open(ctx, site.URL+"/index.html#api=http://"+httpAddr+"&token="+tok)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := page.WaitFor(wctx, expr); err != nil {
			var text string
			_ = page.Eval(ctx, "document.body.innerText", &text)
			t.Fatalf("%s: %v\npage:\n%s", what, err, text)
		}
	}
	got := func(kind, msg string) string {
		return `window.seen.` + kind + `.some(e => e.type === 'presence' && e.data.presence.message === '` + msg + `')`
	}
	snapshots := func(kind string) string { return `window.seen.` + kind + `.filter(e => e.type === 'snapshot').length` }
	wait("snapshots", snapshots("sse")+` === 1 && `+snapshots("ws")+` === 1`)
	p.hook(t, astemu.New(), "presence/set", "1001", "away", "", "Before")
	wait("a change on both", got("sse", "Before")+` && `+got("ws", "Before"))
	p.stop(t)
	wait("both see presenced gone", `document.getElementById('ws-state').textContent === 'reconnecting'`)
	p = startBinary(t, bin, data, env...)
	p.hook(t, astemu.New(), "presence/set", "1001", "dnd", "", "While away")
	wait("resumed on both", got("sse", "While away")+` && `+got("ws", "While away"))
	var n struct{ SSE, WS int }
	if err := page.Eval(ctx, `({SSE: `+snapshots("sse")+`, WS: `+snapshots("ws")+`})`, &n); err != nil {
		t.Fatal(err)
	}
	if n.SSE != 1 || n.WS != 1 {
		t.Fatalf("snapshots after the restart: SSE %d, WebSocket %d (resuming needs none)", n.SSE, n.WS)
	}
}
