package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/asterisk/fastagi/agitest"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// buildBinary builds presenced once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "presenced")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running presenced.
type proc struct {
	cmd      *exec.Cmd
	addr     string // FastAGI
	httpAddr string
	done     chan error
	mu       sync.Mutex
	stopped  bool         // the "presenced stopped" line was seen
	log      bytes.Buffer // every line of its log
}

// logText returns what presenced has logged so far.
func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startBinary starts presenced on free ports with its store in dir and
// waits for its "fastagi listening" and "http listening" lines. Its log is
// read to the end all along, so that logging never blocks it.
func startBinary(t *testing.T, bin, dir string, env ...string) *proc {
	t.Helper()
	p, err := launch(t, bin, dir, 20*time.Second, env...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch is startBinary for any goroutine: it returns what went wrong.
func launch(t *testing.T, bin, dir string, wait time.Duration, env ...string) (*proc, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(append(os.Environ(), "PRESENCED_AGI_LISTEN=127.0.0.1:0", "PRESENCED_HTTP_LISTEN=127.0.0.1:0", "PRESENCED_DATA_DIR="+dir, "PRESENCED_LOG_LEVEL=debug"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	addrs := make(chan [2]string, 2)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m["message"] {
			case "fastagi listening", "http listening":
				a, _ := m["addr"].(string)
				addrs <- [2]string{m["message"].(string), a}
			case "presenced stopped":
				p.mu.Lock()
				p.stopped = true
				p.mu.Unlock()
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			// What presenced said is what tells a failure's cause.
			lines := strings.Split(strings.TrimSpace(p.logText()), "\n")
			t.Logf("the last lines of presenced %d's log:\n%s", cmd.Process.Pid, strings.Join(lines[max(0, len(lines)-150):], "\n"))
		}
	})
	timeout := time.After(wait)
	for p.addr == "" || p.httpAddr == "" {
		select {
		case a := <-addrs:
			if a[0] == "fastagi listening" {
				p.addr = a[1]
			} else {
				p.httpAddr = a[1]
			}
		case err := <-p.done:
			return nil, fmt.Errorf("presenced exited before listening: %v\n%s", err, p.logText())
		case <-timeout:
			return nil, fmt.Errorf("presenced did not start listening\n%s", p.logText())
		}
	}
	return p, nil
}

// stop sends SIGTERM and expects a clean exit with a "presenced stopped" line.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	err := <-p.done
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if err != nil || !stopped {
		t.Fatalf("exit %v, stopped line seen: %v", err, stopped)
	}
}

func (p *proc) hook(t *testing.T, ast *astemu.Asterisk, script string, args ...string) *agitest.Call {
	t.Helper()
	c := &agitest.Call{Ast: ast, Script: script, Args: args, CallerID: "1001"}
	// A guard against a hang, not a measure (benchmarks measure): in a
	// cluster that has just formed, a hook waits for JetStream to elect
	// its streams' leaders, which took more than 10 s on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Run(ctx, p.addr); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ast := astemu.New()

	p := startBinary(t, bin, dir)
	if c := p.hook(t, ast, "presence/set", "", "available"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("set: %v", c.Vars())
	}
	msg := `In a meeting, "room 2" \ back at 3 (maybe) ${EXTEN}`
	if c := p.hook(t, ast, "presence/set?for=1s&message="+strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "#", "%23").Replace(msg), "", "away"); c.Var("PRESENCED_MESSAGE") != msg {
		t.Fatalf("timed set: %v", c.Vars())
	}
	if got, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message)"); got != msg {
		t.Fatalf("Asterisk holds %q", got)
	}
	// When the timed presence ends, as presenced says.
	var timed struct{ Presence struct{ Expires time.Time } }
	if _, body := p.get(t, "/v1/presence/1001"); json.Unmarshal([]byte(body), &timed) != nil || timed.Presence.Expires.IsZero() {
		t.Fatalf("GET /v1/presence/1001: %s", body)
	}
	if c := p.hook(t, ast, "presence/set", "", "busy"); c.Var("PRESENCED_ERROR") != "INVALID_STATE" {
		t.Fatalf("bad state: %v", c.Vars())
	}

	// A second presenced on the same data directory refuses to start.
	second := exec.Command(bin)
	second.Env = append(os.Environ(), "PRESENCED_AGI_LISTEN=127.0.0.1:0", "PRESENCED_HTTP_LISTEN=127.0.0.1:0", "PRESENCED_DATA_DIR="+dir)
	out, err := second.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "locked by another process") {
		t.Fatalf("second instance: %v\n%s", err, out)
	}
	p.stop(t)

	// The timed presence ends while presenced is down; after the restart
	// (no ARI to write with) it is pending and the next hook applies it.
	testenv.Eventually(t, "the timed presence's end passing while presenced is down", func() bool { return time.Now().After(timed.Presence.Expires) })
	p = startBinary(t, bin, dir)
	var vars map[string]string
	testenv.Eventually(t, "the timed presence ended", func() bool {
		vars = p.hook(t, ast, "presence/get").Vars()
		return vars["PRESENCED_STATE"] == "available"
	}, func() string { return fmt.Sprint(vars) })
	if got, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,value)"); got != "available" {
		t.Fatalf("Asterisk holds %q", got)
	}
	if c := p.hook(t, ast, "presence/restore"); c.Var("PRESENCED_STATE") != "not_set" {
		t.Fatalf("restore after restart: %v", c.Vars())
	}
	p.stop(t)
}

// The binary reads PRESENCED_DIALPLAN at start and again on SIGHUP.
func TestBinaryReloadsDialplanOnSIGHUP(t *testing.T) {
	bin := buildBinary(t)
	conf := filepath.Join(t.TempDir(), "extensions.conf")
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_DIALPLAN="+conf)
	ast := astemu.New()
	if c := p.hook(t, ast, "hint/get", "1002@internal"); c.Var("PRESENCED_ERROR") != "NOT_FOUND" {
		t.Fatalf("before reload: %v", c.Vars())
	}
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\nexten => 1002,hint,PJSIP/1002,CustomPresence:1002\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	var vars map[string]string
	testenv.Eventually(t, "SIGHUP reloading the dialplan", func() bool {
		vars = p.hook(t, ast, "hint/get", "1002@internal").Vars()
		return vars["PRESENCED_RESULT"] == "OK"
	}, func() string { return fmt.Sprint(vars) })
	if vars["PRESENCED_HINT_STATE"] != "Idle" {
		t.Fatalf("after reload: %v", vars)
	}
	p.stop(t)
}

// The binary against the fake AMI: a presence change made outside
// presenced reaches hint/get, and survives a dropped connection.
func TestBinaryWithAMI(t *testing.T) {
	bin := buildBinary(t)
	srv, err := amitest.New("presenced", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", Status: 4, StatusText: "Unavailable"})
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_AMI_ADDR="+srv.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=pw")
	ast := astemu.New()
	wait := func(want string) {
		t.Helper()
		var vars map[string]string
		testenv.Eventually(t, "hint/get showing "+want, func() bool {
			vars = p.hook(t, ast, "hint/get", "1001@internal").Vars()
			return vars["PRESENCED_STATE"] == want
		}, func() string { return fmt.Sprint(vars) })
	}
	wait("not_set")
	srv.SetPresence("CustomPresence:1001", amitest.Presence{State: "xa", Message: "on holiday"})
	wait("xa")
	srv.Drop()
	srv.SetPresenceQuietly("CustomPresence:1001", amitest.Presence{State: "available"})
	wait("available")
	p.stop(t)
}

// The binary against the fake ARI and AMI, neither reachable at first
// (wrong passwords): FastAGI works meanwhile; once they accept presenced,
// a Stasis hook runs and continues, a device-state event changes the hint,
// DND shows through the DND device.
func TestBinaryWithFakes(t *testing.T) {
	bin := buildBinary(t)
	ariSrv, err := aritest.New("ari", "ari")
	if err != nil {
		t.Fatal(err)
	}
	defer ariSrv.Close()
	amiSrv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer amiSrv.Close()
	amiSrv.Attach(ariSrv.Ast) // one Asterisk behind both
	ariSrv.SetPassword("not yet")
	amiSrv.SetSecret("not yet")
	amiSrv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001", StatusText: "Idle"})
	ariSrv.SetDevice("PJSIP/1001", "NOT_INUSE")
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_ARI_URL="+ariSrv.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari",
		"PRESENCED_AMI_ADDR="+amiSrv.Addr(), "PRESENCED_AMI_USER=ami", "PRESENCED_AMI_SECRET=ami")
	if c := p.hook(t, ariSrv.Ast, "presence/set", "", "available"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("FastAGI with Asterisk's interfaces away: %v", c.Vars())
	}
	ariSrv.SetPassword("ari")
	amiSrv.SetSecret("ami")
	waitFor := func(what string, cond func() bool) { t.Helper(); testenv.Eventually(t, what, cond) }
	waitFor("the ARI application", func() bool { return ariSrv.Connected("presenced") && len(ariSrv.Subscriptions("presenced")) == 2 })
	id := ariSrv.StartStasis("presenced", "1001", "dnd/on")
	waitFor("the Stasis channel to continue", func() bool { ch, _ := ariSrv.ChannelState(id); return ch.Continued })
	if ch, _ := ariSrv.ChannelState(id); ch.Vars["PRESENCED_RESULT"] != "OK" || ch.Vars["PRESENCED_STATE"] != "dnd" {
		t.Fatalf("Stasis hook: %v", ch.Vars)
	}
	hintState := func() string { return p.hook(t, ariSrv.Ast, "hint/get", "1001@internal").Var("PRESENCED_HINT_STATE") }
	waitFor("the DND device to show", func() bool { return hintState() == "Busy" })
	p.hook(t, ariSrv.Ast, "dnd/off")
	waitFor("DND off", func() bool { return hintState() == "Idle" })
	ariSrv.SetDevice("PJSIP/1001", "RINGING")
	waitFor("the device event", func() bool { return hintState() == "Ringing" })
	p.stop(t)
}

func TestBinaryCommandLine(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "presenced ") {
		t.Fatalf("version: %v %s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PRESENCED_LOG_FORMAT=xml")
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "PRESENCED_LOG_FORMAT") {
		t.Fatalf("bad config: %v %s", err, out)
	}
	out, err = exec.Command(bin, "frobnicate").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage") {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}

// hintOf is the hint state a hub event carries.
func hintOf(ev *watch.Event) hints.State {
	st, _ := ev.Value.(hints.State)
	return st
}

// presOf is the provider presence a hub event carries.
func presOf(ev *watch.Event) hints.ProviderPresence {
	p, _ := ev.Value.(hints.ProviderPresence)
	return p
}
