package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// get fetches a path of a running presenced.
func (p *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return p.do(t, "GET", path, "", "")
}

// With a wrong ARI password, and with ARI unreachable, at every log level
// down to trace (AMI frames, the login included): neither the log,
// /readyz nor /metrics holds a password or the AMI secret.
func TestBinaryKeepsSecrets(t *testing.T) {
	bin := buildBinary(t)
	const ariPass, amiSecret = "Wrong-ARI-pass/word+42", "Ami-Secret-77"
	ari := fakeARI(t)
	ari.SetPassword("the-right-one-123")
	ami, err := amitest.New("presenced", amiSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer ami.Close()
	ami.Attach(astemu.New())
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	unreachable := "http://" + closed.Addr().String() + "/ari"
	closed.Close()
	// And with the right password, where trace shows every ARI call.
	right := fakeARI(t)
	right.SetPassword(ariPass)
	for name, ariURL := range map[string]string{"wrong password": ari.URL(), "unreachable": unreachable, "connected": right.URL()} {
		t.Run(name, func(t *testing.T) {
			p := startBinary(t, bin, t.TempDir(), "PRESENCED_LOG_LEVEL=trace", "PRESENCED_ARI_URL="+ariURL, "PRESENCED_ARI_USER=ari",
				"PRESENCED_ARI_PASSWORD="+ariPass, "PRESENCED_AMI_ADDR="+ami.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET="+amiSecret)
			var ready string
			testenv.Eventually(t, "/readyz showing ARI as expected and AMI up", func() bool {
				_, ready = p.get(t, "/readyz")
				ariOK := strings.Contains(ready, `"ari":"not connected: `)
				if name == "connected" {
					ariOK = strings.Contains(ready, `"ari":"ok"`)
				}
				return ariOK && strings.Contains(ready, `"ami":"ok"`)
			}, func() string { return ready })
			// A hook: at debug and below, its AGI transcript is logged.
			p.hook(t, astemu.New(), "presence/set", "1001", "away")
			_, metrics := p.get(t, "/metrics")
			p.stop(t)
			log := p.logText()
			if !strings.Contains(log, `"ami sent"`) || !strings.Contains(log, `Action: Login`) {
				t.Fatalf("trace shows no AMI frames:\n%s", log)
			}
			if name == "connected" && !strings.Contains(log, `"ari call"`) {
				t.Fatalf("trace shows no ARI calls:\n%s", log)
			}
			if !strings.Contains(log, `"agi sent"`) || !strings.Contains(log, `SET VARIABLE \"PRESENCE_STATE(CustomPresence:1001)\" \"away`) {
				t.Fatalf("no hook transcript:\n%s", log)
			}
			for what, text := range map[string]string{"log": log, "/readyz": ready, "/metrics": metrics} {
				for _, secret := range []string{ariPass, "Wrong-ARI-pass", amiSecret, "api_key", "YXJp"} {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds %q:\n%s", what, secret, text)
					}
				}
			}
		})
	}
}

// Every bad setting stops presenced with exit status 2 and a message
// naming the variable, those found only when used (a port in use, a file
// that is gone) included.
func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := []string{"PRESENCED_AGI_LISTEN=127.0.0.1:0", "PRESENCED_HTTP_LISTEN=127.0.0.1:0", "PRESENCED_ARI_URL=", "PRESENCED_AMI_ADDR="}
	for _, tc := range []struct{ kv, name string }{
		{"PRESENCED_AGI_LISTEN=nonsense", "AGI_LISTEN"},
		{"PRESENCED_AGI_LISTEN=127.0.0.1:99999", "AGI_LISTEN"},
		{"PRESENCED_AGI_LISTEN=" + busy.Addr().String(), "AGI_LISTEN"},
		{"PRESENCED_HTTP_LISTEN=" + busy.Addr().String(), "HTTP_LISTEN"},
		{"PRESENCED_HTTP_LISTEN=localhost", "HTTP_LISTEN"},
		{"PRESENCED_DATA_DIR=" + file, "DATA_DIR"},
		{"PRESENCED_DIALPLAN=" + filepath.Join(dir, "missing.conf"), "DIALPLAN"},
		{"PRESENCED_DIALPLAN=" + dir, "DIALPLAN"},
		{"PRESENCED_ROSTER=" + filepath.Join(dir, "missing.csv"), "ROSTER"},
		{"PRESENCED_AMI_ADDR=nonsense", "AMI_ADDR"},
		{"PRESENCED_AMI_ADDR=127.0.0.1:0", "AMI_ADDR"},
		{"PRESENCED_ARI_URL=http://ari:secret-pw@127.0.0.1:8088/ari", "ARI_URL"},
		{"PRESENCED_API_TOKENS=read:same-token-0123456789,admin:same-token-0123456789", "API_TOKENS"},
		{"PRESENCED_API_TOKENS_FILE=" + filepath.Join(dir, "missing"), "API_TOKENS_FILE"},
		{"PRESENCED_HTTP_ALLOWED_ORIGINS=crm.example.com", "HTTP_ALLOWED_ORIGINS"},
		{"PRESENCED_HTTP_ALLOWED_HOSTS=http://x", "HTTP_ALLOWED_HOSTS"},
		{"PRESENCED_HTTP_MAX_CONNS=1", "HTTP_MAX_CONNS"},
		{"PRESENCED_HTTP_BODY_TIMEOUT=0s", "HTTP_BODY_TIMEOUT"},
		{"PRESENCED_WEBHOOK_ALLOW=public", "WEBHOOK_ALLOW"},
		{"PRESENCED_LOG_LEVEL=loud", "LOG_LEVEL"},
		{"PRESENCED_AGI_MAX_SESSIONS=many", "AGI_MAX_SESSIONS"},
		// A cluster that anything beyond loopback can reach, without its
		// secret (refused before anything listens).
		{"PRESENCED_CLUSTER_LISTEN=0.0.0.0:0", "CLUSTER_SECRET_FILE"},
		{"PRESENCED_DIAL_ALLOW=_1.2", "DIAL_ALLOW"},
		{"PRESENCED_DIAL_DENY=*7$", "DIAL_DENY"},
		{"PRESENCED_TRUSTED_PROXIES=proxy.example", "TRUSTED_PROXIES"},
	} {
		var out, errOut bytes.Buffer
		env := append(append([]string{"PRESENCED_DATA_DIR=" + t.TempDir()}, base...), tc.kv)
		code := run([]string{"serve"}, env, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), "PRESENCED_"+tc.name) {
			t.Errorf("%s: exit %d, %q", tc.kv, code, errOut.String())
		}
		if strings.Contains(errOut.String(), "secret-pw") {
			t.Errorf("%s: the password is shown: %s", tc.kv, errOut.String())
		}
	}
}

// 1,000 connections trickling request bodies are cut at the body
// deadline; meanwhile other clients and FastAGI are served.
func TestBinaryTrickledBodies(t *testing.T) {
	bin := buildBinary(t)
	conf := filepath.Join(t.TempDir(), "extensions.conf")
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_DIALPLAN="+conf, "PRESENCED_HTTP_BODY_TIMEOUT=3s", "PRESENCED_LOG_LEVEL=info")
	const n = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	cut, accepted := 0, 0
	opened := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", p.httpAddr)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				opened <- struct{}{}
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "PUT /v1/presence/1001 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			opened <- struct{}{}
			answered := make(chan int, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					answered <- 0
					return
				}
				answered <- resp.StatusCode
			}()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case st := <-answered:
					mu.Lock()
					if st == 200 {
						accepted++
					} else {
						cut++
					}
					mu.Unlock()
					return
				case <-tick.C:
					_, _ = c.Write([]byte(" "))
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	for range n {
		<-opened
	}
	// While they trickle: a hook over FastAGI, a REST read and a write.
	c := p.hook(t, astemu.New(), "presence/set", "1001", "away")
	if c.Vars()["PRESENCED_RESULT"] != "OK" {
		t.Fatalf("hook during the trickle: %v", c.Vars())
	}
	if code, body := p.get(t, "/v1/hints"); code != 200 || !strings.Contains(body, `"1001"`) {
		t.Fatalf("REST during the trickle: %d %s", code, body)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("trickled connections were not cut")
	}
	if accepted != 0 || cut != n {
		t.Fatalf("cut %d, accepted %d of %d", cut, accepted, n)
	}
}

// An argument holding a line break (Asterisk writes it into the
// environment as it is) still gets a result, and changes nothing. (One
// that ends with a line break ends Asterisk's environment block there:
// FastAGI's framing cannot tell it from the block's end; README.)
func TestHookArgumentWithLineBreak(t *testing.T) {
	m := openMain(t, t.TempDir())
	defer m.Close()
	ast := astemu.New()
	for _, arg := range []string{"away\nx", "away\r\nx"} {
		c := hook(t, m, ast, "presence/set", "1001", "1001", arg)
		if c.Var("PRESENCED_RESULT") != "ERROR" || c.Var("PRESENCED_ERROR") != "INVALID_ARGUMENT" {
			t.Errorf("%q: %v", arg, c.Vars())
		}
	}
	if st, _, _, _ := ast.Presence("CustomPresence:1001"); st != "" && st != "not_set" {
		t.Fatal("a refused hook wrote presence")
	}
}

// SIGHUP reads the tokens file again; a broken file keeps the old tokens.
func TestBinaryReloadsTokensOnSIGHUP(t *testing.T) {
	bin := buildBinary(t)
	file := filepath.Join(t.TempDir(), "tokens")
	const a, b = "first-token-0123456789", "second-token-0123456789"
	if err := os.WriteFile(file, []byte("read:wall:"+a+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_API_TOKENS_FILE="+file)
	status := func(tok string) int {
		req, _ := http.NewRequest("GET", "http://"+p.httpAddr+"/v1/hints", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status(a) != 200 || status(b) != 401 {
		t.Fatalf("before: %d %d", status(a), status(b))
	}
	hup := func(want string) {
		t.Helper()
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		testenv.Eventually(t, fmt.Sprintf("%q in the log", want), func() bool { return strings.Contains(p.logText(), want) })
	}
	if err := os.WriteFile(file, []byte("read:board:"+b+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup("API tokens reloaded")
	if status(a) != 401 || status(b) != 200 {
		t.Fatalf("after reload: %d %d", status(a), status(b))
	}
	if err := os.WriteFile(file, []byte("read:short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup("API tokens not reloaded")
	if status(b) != 200 {
		t.Fatal("a broken file dropped the tokens")
	}
	p.stop(t)
}

// The console format has colour at a terminal only.
func TestConsoleLogWithoutColour(t *testing.T) {
	cfg, err := LoadConfig([]string{"PRESENCED_LOG_FORMAT=console", "PRESENCED_AMI_SECRET=hunter-22-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := NewLogger(cfg, &buf)
	log.Info().Str("error", "login with hunter-22-secret refused").Msg("hello")
	if out := buf.String(); strings.Contains(out, "\x1b[") || !strings.Contains(out, "hello") || strings.Contains(out, "hunter-22") {
		t.Fatalf("console log %q", out)
	}
}
