package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// cutter is a loopback TCP proxy to a NATS server that can be cut (every
// connection closed, new ones refused) and mended (listening again on
// the same address).
type cutter struct {
	t      *testing.T
	addr   string // where presenced connects
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	c := &cutter{t: t, addr: testenv.FreeAddr(t), target: target}
	c.mend()
	t.Cleanup(c.cut)
	return c
}

func (c *cutter) mend() {
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", c.target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// A presenced cut off from NATS (its only way there closed: the servers
// do not advertise others) answers hooks and writes with UNAVAILABLE,
// writes nothing half-way (the user's presence is unchanged on the other
// nodes), reports not ready; and when it is back, it is ready again and
// has caught up with what changed meanwhile (its watcher gets it, once).
func TestClusterCutOff(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	servers := startNATSCluster(t, 3, "--no_advertise")
	proxy := newCutter(t, strings.TrimPrefix(servers[2].url, "nats://"))
	urls := []string{servers[0].url, servers[1].url, "nats://" + proxy.addr}
	procs := startNATSNodes(t, bin, urls, "PRESENCED_WRITE_BUDGET=2s")
	defer func() {
		for _, p := range procs {
			p.stop(t)
		}
	}()
	ast := astemu.New()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	set := func(p *proc, user, state, msg string) (string, string) {
		c := p.hook(t, ast, "presence/set", user, state, "", msg)
		return c.Var("PRESENCED_RESULT"), c.Var("PRESENCED_ERROR")
	}
	if res, _ := set(procs[0], "2001", "away", "before"); res != "OK" {
		t.Fatalf("set before: %s", res)
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		testenv.Eventually(t, what, ok)
	}
	presenceAt := func(p *proc, user string) string {
		_, state, msg := restPresence(p, "GET", "/v1/presence/"+user, "")
		return state + " " + msg
	}
	waitUntil("node 3 sees the first set", func() bool { return presenceAt(procs[2], "2001") == "away before" })
	events := watchSSE(t, ctx, procs[2])
	if ev := <-events; ev.event != "snapshot" {
		t.Fatalf("first event %q", ev.event)
	}

	proxy.cut()
	waitUntil("node 3 not ready", func() bool {
		code, body := procs[2].get(t, "/readyz")
		return code == 503 && strings.Contains(body, "not connected to NATS")
	})
	t0 := time.Now()
	res, code := set(procs[2], "2001", "dnd", "cut off")
	if res == "OK" || code != "UNAVAILABLE" {
		t.Fatalf("a hook at the cut-off node: %s %s", res, code)
	}
	t.Logf("a hook at the cut-off node answered %s in %v", code, time.Since(t0).Round(time.Millisecond))
	if st, _, _ := restPresence(procs[2], "PUT", "/v1/presence/2001", `{"state":"dnd","message":"cut off"}`); st != 503 {
		t.Fatalf("a REST write at the cut-off node: %d", st)
	}
	if got := presenceAt(procs[0], "2001"); got != "away before" {
		t.Fatalf("node 1 after the cut-off node's failed writes: %q", got)
	}
	// Meanwhile the cluster goes on.
	if res, _ := set(procs[1], "2002", "away", "meanwhile"); res != "OK" {
		t.Fatalf("set meanwhile: %s", res)
	}

	proxy.mend()
	waitUntil("node 3 ready again", func() bool { code, _ := procs[2].get(t, "/readyz"); return code == 200 })
	waitUntil("node 3 caught up", func() bool { return presenceAt(procs[2], "2002") == "away meanwhile" })
	// The change made meanwhile, once: waited for up to 30 s, then 3 s
	// more for a repeat.
	seen := 0
	for quiet := time.After(30 * time.Second); ; {
		select {
		case ev := <-events:
			if ev.event == "presence" && strings.Contains(ev.data, `"meanwhile"`) {
				if seen++; seen == 1 {
					quiet = time.After(3 * time.Second)
				}
			}
			if ev.event == "presence" && strings.Contains(ev.data, `"cut off"`) {
				t.Fatalf("the failed write reached the watcher: %s", ev.data)
			}
			continue
		case <-quiet:
		}
		break
	}
	if seen != 1 {
		t.Fatalf("node 3's watcher saw the change made meanwhile %d times", seen)
	}
	if res, _ := set(procs[2], "2001", "dnd", "back"); res != "OK" {
		t.Fatalf("a hook at node 3 once back: %s", res)
	}
	waitUntil("node 1 sees node 3's write", func() bool { return presenceAt(procs[0], "2001") == "dnd back" })
}

// A presenced whose only NATS server stops answering without closing
// anything (SIGSTOP: a dead link looks the same) notices within seconds:
// /readyz says so, a hook answers UNAVAILABLE within the write budget
// rather than hold the call, and reads say they may be stale (a header
// and a field). The other nodes go on; once the server is back, so is the
// node. The times are logged (go test -v) for the docs, not held: tests
// do not time.
func TestClusterSilentCut(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	servers := startNATSCluster(t, 3, "--no_advertise")
	procs := startNATSNodes(t, bin, []string{servers[0].url, servers[1].url, servers[2].url}, "PRESENCED_WRITE_BUDGET=2s")
	defer func() {
		for _, p := range procs {
			p.stop(t)
		}
	}()
	ast := astemu.New()
	set := func(p *proc, user, state, msg string) (string, string) {
		c := p.hook(t, ast, "presence/set", user, state, "", msg)
		return c.Var("PRESENCED_RESULT"), c.Var("PRESENCED_ERROR")
	}
	if res, _ := set(procs[0], "2001", "away", "before"); res != "OK" {
		t.Fatalf("set before: %s", res)
	}
	testenv.Eventually(t, "node 3 seeing the first set", func() bool {
		_, state, msg := restPresence(procs[2], "GET", "/v1/presence/2001", "")
		return state+" "+msg == "away before"
	})

	stopped := servers[2]
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = stopped.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	t0 := time.Now()
	testenv.Eventually(t, "node 3 saying it is cut off", func() bool {
		req, _ := http.NewRequest("GET", "http://"+procs[2].httpAddr+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("Presenced-Stale") != ""
	})
	t.Logf("node 3 said it was cut off %v after its NATS server stopped", time.Since(t0).Round(time.Millisecond))
	var ready string
	testenv.Eventually(t, "node 3 not ready", func() bool {
		var code int
		code, ready = procs[2].get(t, "/readyz")
		return code == 503 && strings.Contains(ready, `"cluster":`)
	}, func() string { return ready })
	t.Logf("node 3 not ready %v after its NATS server stopped: %s", time.Since(t0).Round(time.Millisecond), ready)

	t1 := time.Now()
	if res, code := set(procs[2], "2001", "dnd", "cut off"); res == "OK" || code != "UNAVAILABLE" {
		t.Fatalf("a hook at the cut-off node: %s %s", res, code)
	}
	t.Logf("a hook at the cut-off node answered UNAVAILABLE in %v", time.Since(t1).Round(time.Millisecond))
	t2 := time.Now()
	if st, _, _ := restPresence(procs[2], "PUT", "/v1/presence/2001", `{"state":"dnd","message":"cut off"}`); st != 503 {
		t.Fatalf("a REST write at the cut-off node: %d", st)
	}
	t.Logf("a REST write at the cut-off node answered 503 in %v", time.Since(t2).Round(time.Millisecond))
	// Reads: the last this node knew, said to be so.
	req, _ := http.NewRequest("GET", "http://"+procs[2].httpAddr+"/v1/presence/2001", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Presence struct{ State, Message string }
		Stale    bool
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || !got.Stale || got.Presence.Message != "before" || !strings.HasPrefix(resp.Header.Get("Presenced-Stale"), "cut off from the cluster since ") {
		t.Fatalf("a read at the cut-off node: %d %+v %q", resp.StatusCode, got, resp.Header.Get("Presenced-Stale"))
	}
	// The cluster goes on without it.
	var res string
	testenv.Eventually(t, "node 1 writing", func() bool { res, _ = set(procs[0], "2002", "away", "meanwhile"); return res == "OK" },
		func() string { return res })

	resume()
	testenv.Eventually(t, "node 3 ready again", func() bool { code, _ := procs[2].get(t, "/readyz"); return code == 200 })
	testenv.Eventually(t, "node 3 caught up", func() bool {
		_, state, msg := restPresence(procs[2], "GET", "/v1/presence/2002", "")
		return state+" "+msg == "away meanwhile"
	})
	if res, code := set(procs[2], "2001", "dnd", "back"); res != "OK" {
		t.Fatalf("a hook at node 3 once back: %s %s", res, code)
	}
}

// Cross-site BLF while the watching site is cut off: Lyon's device for
// Paris's 2001 shows Paris's hint; when Lyon's node loses its only NATS
// server (SIGSTOP), Lyon cannot know Paris's hint and the device shows
// UNAVAILABLE (not the last state heard); back, it shows Paris's hint as
// it is then.
func TestClusterCutOffRemoteLamps(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	servers := startNATSCluster(t, 3, "--no_advertise")
	parisARI, parisAMI := fakeAsterisk(t)
	parisAMI.SetHints(amitest.Hint{Exten: "2001", Context: "internal", App: "PJSIP/2001,CustomPresence:2001", StatusText: "Idle"})
	parisARI.SetDevice("PJSIP/2001", "NOT_INUSE")
	lyonARI, lyonAMI := fakeAsterisk(t)
	lyonAMI.SetHints(amitest.Hint{Exten: "2001", Context: "internal", App: "Stasis:presenced-remote-paris-2001,CustomPresence:2001", StatusText: "Unavailable", Status: 4})
	site := func(name string, ari *aritest.Server, ami *amitest.Server, app string) []string {
		return append(ariLogin(ari), "PRESENCED_SITE="+name, "PRESENCED_ARI_APP="+app, "PRESENCED_AMI_ADDR="+ami.Addr(),
			"PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=pw", "PRESENCED_REMOTE_CONTEXT=internal")
	}
	procs := startNATSNodesWith(t, bin, []string{servers[0].url, servers[1].url, servers[2].url}, [][]string{
		site("paris", parisARI, parisAMI, "presenced-n1"), site("paris", parisARI, parisAMI, "presenced-n2"),
		site("lyon", lyonARI, lyonAMI, "presenced")}, "PRESENCED_WRITE_BUDGET=2s")
	defer func() {
		for _, p := range procs {
			p.stop(t)
		}
	}()
	remote := "Stasis:presenced-remote-paris-2001"
	parisARI.SetDevice("PJSIP/2001", "INUSE")
	testenv.Eventually(t, "Lyon's device showing Paris's 2001 in use", func() bool { return lyonARI.Device(remote) == "INUSE" },
		func() string { return lyonARI.Device(remote) })

	if err := servers[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = servers[2].cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	t0 := time.Now()
	testenv.Eventually(t, "Lyon's device UNAVAILABLE while Lyon is cut off", func() bool { return lyonARI.Device(remote) == "UNAVAILABLE" },
		func() string { return lyonARI.Device(remote) })
	t.Logf("Lyon's device UNAVAILABLE %v after its NATS server stopped", time.Since(t0).Round(time.Millisecond))
	parisARI.SetDevice("PJSIP/2001", "RINGING") // meanwhile at Paris
	resume()
	testenv.Eventually(t, "Lyon's device showing Paris's 2001 ringing once back", func() bool { return lyonARI.Device(remote) == "RINGING" },
		func() string { return lyonARI.Device(remote) })
}
