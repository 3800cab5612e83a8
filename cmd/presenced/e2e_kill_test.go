package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/presenced/presenced/asterisk/fastagi/agitest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/storage/cluster"
	"github.com/presenced/presenced/views/webhook"
)

// restPresence sets (PUT) or restores (POST .../restore) a user's
// presence at a node, and returns the status and the presence.
func restPresence(p *proc, method, path, body string) (int, string, string) {
	req, _ := http.NewRequest(method, "http://"+p.httpAddr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 40 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", ""
	}
	defer resp.Body.Close()
	var out struct {
		Presence struct{ State, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Presence.State, out.Presence.Message
}

// burstUsers is how many users a kill test's burst sets.
const burstUsers = 20

// killRun is what the kill tests share: a webhook of every change, a
// timed presence, and a burst of hooks and REST writes at every node
// that is not marked dead, each keeping what was confirmed, by user, in
// its order.
type killRun struct {
	t     *testing.T
	ctx   context.Context
	procs []*proc
	ast   *astemu.Asterisk

	hmu        sync.Mutex
	hookIDs    []uint64
	hookAt     []time.Time
	hookBodies map[uint64][]byte // by event id

	confirmed []map[string][]string // by node, by user
	failed    []atomic.Int64        // by node: writes not confirmed
	// okAt: by node, by user, when a write was last confirmed (under cmu;
	// confirmed is read only once the burst has ended).
	cmu      sync.Mutex
	okAt     []map[string]time.Time
	dead     sync.Map // nodes no longer written to
	wg       sync.WaitGroup
	stop     chan struct{}
	stopOnce sync.Once
}

// halt stops the burst and waits for its writers (once; a test that
// fails stops it too, so that no writer logs after the test).
func (r *killRun) halt() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
}

func burstUser(i int) string { return strconv.Itoa(2001 + i%burstUsers) }

// newKillRun creates a webhook of every change (through node 0) and its
// receiver.
func newKillRun(t *testing.T, ctx context.Context, procs []*proc) *killRun {
	r := &killRun{t: t, ctx: ctx, procs: procs, ast: astemu.New(), stop: make(chan struct{}), hookBodies: map[uint64][]byte{},
		confirmed: make([]map[string][]string, len(procs)), failed: make([]atomic.Int64, len(procs))}
	r.okAt = make([]map[string]time.Time, len(procs))
	for n := range r.confirmed {
		r.confirmed[n] = map[string][]string{}
		r.okAt[n] = map[string]time.Time{}
	}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if id, err := strconv.ParseUint(req.Header.Get(webhook.EventIDHeader), 10, 64); err == nil {
			body, _ := io.ReadAll(req.Body)
			r.hmu.Lock()
			r.hookIDs = append(r.hookIDs, id)
			r.hookAt = append(r.hookAt, time.Now())
			r.hookBodies[id] = body
			r.hmu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	req, _ := http.NewRequest("POST", "http://"+procs[0].httpAddr+"/v1/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`/hook","all":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("creating the webhook: %v %v", resp, err)
	}
	resp.Body.Close()
	return r
}

// deliverer returns the node that delivers the webhook.
func (r *killRun) deliverer() int {
	at := -1
	testenv.Eventually(r.t, "a node delivering the webhook", func() bool {
		for i, p := range r.procs {
			if _, body := p.get(r.t, "/readyz"); strings.Contains(body, `"webhooks":["wh_`) {
				at = i
				return true
			}
		}
		return false
	})
	return at
}

// timed sets 3001 available at node base, then away for 4 s at node at.
func (r *killRun) timed(base, at int) {
	if c := r.procs[base].hook(r.t, r.ast, "presence/set", "3001", "available"); c.Var("PRESENCED_RESULT") != "OK" {
		r.t.Fatalf("set 3001: %v", c.Vars())
	}
	if c := r.procs[at].hook(r.t, r.ast, "presence/set?for=4s", "3001", "away", "", "Timed"); c.Var("PRESENCED_RESULT") != "OK" {
		r.t.Fatalf("timed set 3001: %v", c.Vars())
	}
}

// startBurst starts each node setting the users over and over: half of
// them by hooks and REST in turn, at people's pace (a few changes a
// second each), the other half by REST alone, as an integration would,
// each client waiting for its answer (a REST write that answered before
// its change was logged let many pile up during a log's election).
func (r *killRun) startBurst() {
	r.t.Cleanup(r.halt)
	for n := range r.procs {
		r.wg.Add(2)
		go r.writer(n, 0, 100*time.Millisecond, false)
		go r.writer(n, burstUsers/2, 30*time.Millisecond, true)
	}
}

// writer is one of a node's writers: it sets users from the first on
// (burstUsers/2 of them) in turn, every pause.
func (r *killRun) writer(n, first int, pause time.Duration, restOnly bool) {
	defer r.wg.Done()
	for i := 0; ; i++ {
		select {
		case <-r.stop:
			return
		default:
		}
		if _, d := r.dead.Load(n); d {
			return
		}
		msg := fmt.Sprintf("n%d-%d-%d", n+1, first, i)
		state := []string{"away", "dnd"}[(i/burstUsers)%2]
		user := burstUser(first + i%(burstUsers/2))
		ok, why := false, ""
		if restOnly || i%3 == 0 {
			code, _, got := restPresence(r.procs[n], "PUT", "/v1/presence/"+user, `{"state":"`+state+`","message":"`+msg+`"}`)
			ok, why = (code == 200 || code == 202) && got == msg, fmt.Sprintf("PUT %d", code)
		} else {
			c := &agitest.Call{Ast: r.ast, Script: "presence/set", Args: []string{user, state, "", msg}, CallerID: "1001"}
			cctx, ccancel := context.WithTimeout(r.ctx, 40*time.Second)
			err := c.Run(cctx, r.procs[n].addr)
			ccancel()
			ok, why = err == nil && c.Var("PRESENCED_RESULT") == "OK", fmt.Sprintf("hook %v %s", err, c.Var("PRESENCED_RESULT"))
		}
		if ok {
			r.cmu.Lock()
			r.confirmed[n][user] = append(r.confirmed[n][user], msg)
			r.okAt[n][user] = time.Now()
			r.cmu.Unlock()
		} else {
			r.failed[n].Add(1)
			r.t.Logf("node %d: %s not confirmed (%s)", n+1, msg, why)
		}
		time.Sleep(pause)
	}
}

// awaitWrites waits until every live node has had a write of every
// burst user confirmed after t0: the burst is under way (t0 its start),
// or the cluster has got over a fault (t0 the fault; a user whose lease
// a killed node held is written again once the lease has expired).
func (r *killRun) awaitWrites(what string, t0 time.Time) {
	r.t.Helper()
	testenv.Eventually(r.t, what, func() bool {
		r.cmu.Lock()
		defer r.cmu.Unlock()
		for n := range r.procs {
			if _, d := r.dead.Load(n); d {
				continue
			}
			for u := range burstUsers {
				if !r.okAt[n][burstUser(u)].After(t0) {
					return false
				}
			}
		}
		return true
	})
}

// endBurst stops the burst; every live node confirmed some writes.
func (r *killRun) endBurst() {
	r.halt()
	for n := range r.procs {
		if _, d := r.dead.Load(n); !d && len(r.confirmed[n]) == 0 {
			r.t.Fatalf("node %d confirmed nothing", n+1)
		}
	}
}

// firstDelivery logs the first webhook delivery after t0 (for
// BENCHMARKS.md, go test -v).
func (r *killRun) firstDelivery(what string, t0 time.Time) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	for _, at := range r.hookAt {
		if at.After(t0) {
			r.t.Logf("webhook: first delivery %v after %s", at.Sub(t0).Round(time.Millisecond), what)
			return
		}
	}
}

// checkTimed: the timed presence ended; 3001 is available again.
func (r *killRun) checkTimed(at int) {
	var code int
	var state string
	testenv.Eventually(r.t, fmt.Sprintf("3001 available again at node %d", at+1), func() bool {
		code, state, _ = restPresence(r.procs[at], "GET", "/v1/presence/3001", "")
		return (code == 200 || code == 202) && state == "available"
	}, func() string {
		lines := []string{fmt.Sprintf("%d %s", code, state)}
		for _, p := range r.procs {
			for _, l := range strings.Split(p.logText(), "\n") {
				if strings.Contains(l, "3001") || strings.Contains(l, "timed") {
					lines = append(lines, l)
				}
			}
		}
		return strings.Join(lines, "\n")
	})
}

// checkMemory: every confirmed write is in its user's restore memory,
// in its node's order, walked back with restore at node at.
func (r *killRun) checkMemory(at int) {
	for u := range burstUsers {
		user := burstUser(u)
		var walked []string
		if _, _, msg := restPresence(r.procs[at], "GET", "/v1/presence/"+user, ""); msg != "" {
			walked = append(walked, msg) // the latest, then what restore goes back to
		}
		for range 5000 {
			code, state, msg := restPresence(r.procs[at], "POST", "/v1/presence/"+user+"/restore", "")
			if code != 200 && code != 202 { // 202: pending, with no AMI to write it
				r.t.Fatalf("restore %s: %d", user, code)
			}
			if state == "not_set" || msg == "" {
				break
			}
			walked = append(walked, msg)
		}
		slices.Reverse(walked)
		for n := range r.confirmed {
			c := r.confirmed[n][user]
			i := 0
			for _, m := range walked {
				if i < len(c) && m == c[i] {
					i++
				}
			}
			if i != len(c) {
				r.t.Fatalf("user %s, node %d: %d of %d confirmed writes in order in the restore memory (missing %q)", user, n+1, i, len(c), c[i])
			}
		}
	}
}

// checkWebhook: the webhook got every change from its first to the
// log's last (as node at reports it), in order, none missing; repeats
// allowed (at least once).
func (r *killRun) checkWebhook(at int) {
	_, body := r.procs[at].get(r.t, "/readyz")
	var rz struct {
		Cluster struct{ Log struct{ Last uint64 } }
	}
	_ = json.Unmarshal([]byte(body), &rz)
	head := rz.Cluster.Log.Last
	deadline := time.Now().Add(60 * time.Second)
	progress := 0
	for {
		r.hmu.Lock()
		ids := slices.Clone(r.hookIDs)
		r.hmu.Unlock()
		if len(ids) > progress+100 {
			// Still catching up: the deadline is for a webhook that stopped.
			progress, deadline = len(ids), time.Now().Add(60*time.Second)
		}
		uniq := slices.Clone(ids)
		slices.Sort(uniq)
		uniq = slices.Compact(uniq)
		if len(uniq) > 0 && uniq[len(uniq)-1] >= head {
			for i := 1; i < len(uniq); i++ {
				if uniq[i] != uniq[i-1]+1 {
					r.t.Fatalf("webhook: a gap, %d then %d", uniq[i-1], uniq[i])
				}
			}
			seen := map[uint64]bool{}
			for i, id := range ids {
				if i > 0 && id <= ids[i-1] && !seen[id] {
					r.t.Fatalf("webhook: %d after %d, not a repeat", id, ids[i-1])
				}
				seen[id] = true
			}
			return
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, p := range r.procs {
				for _, l := range strings.Split(p.logText(), "\n") {
					if strings.Contains(l, "webhook") || strings.Contains(l, "change log") {
						lines = append(lines, l)
					}
				}
			}
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			r.t.Fatalf("webhook: %d events, up to %v, head %d\n%s", len(uniq), uniq[len(uniq)-1:], head, strings.Join(lines, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkLogged (once the burst has ended, before anything else writes):
// the change log, as the webhook gets it, ends for every user on the
// presence node at shows (no older change logged after a newer one; a
// write answered UNAVAILABLE is logged later); and every write a node
// confirmed is in it, in the order its node made them (a write is
// answered once its change is logged, whatever the log went through).
func (r *killRun) checkLogged(at int) {
	logged := func() map[string][]string { // by user: the messages, in the log's order
		r.hmu.Lock()
		defer r.hmu.Unlock()
		out := map[string][]string{}
		for _, id := range slices.Sorted(maps.Keys(r.hookBodies)) {
			var ev struct {
				Type, Provider string
				Presence       struct{ Message string }
			}
			if err := json.Unmarshal(r.hookBodies[id], &ev); err != nil {
				r.t.Errorf("webhook event %d: %v: %s", id, err, r.hookBodies[id])
			}
			if user, ok := strings.CutPrefix(ev.Provider, "CustomPresence:"); ok && ev.Type == "presence" {
				out[user] = append(out[user], ev.Presence.Message)
			}
		}
		return out
	}
	var wrong []string
	testenv.Eventually(r.t, "the log ending on every user's presence", func() bool {
		wrong = nil
		l := logged()
		for u := range burstUsers {
			user := burstUser(u)
			_, _, shown := restPresence(r.procs[at], "GET", "/v1/presence/"+user, "")
			if m := l[user]; len(m) == 0 || m[len(m)-1] != shown {
				wrong = append(wrong, fmt.Sprintf("%s: the log ends on %q, node %d shows %q", user, m[max(len(m)-1, 0):], at+1, shown))
			}
		}
		return len(wrong) == 0
	}, func() string { return strings.Join(wrong, "; ") })
	l := logged()
	for u := range burstUsers {
		user := burstUser(u)
		for n := range r.confirmed {
			c := r.confirmed[n][user]
			i := 0
			for _, m := range l[user] {
				if i < len(c) && m == c[i] {
					i++
				}
			}
			if i != len(c) {
				r.t.Errorf("user %s, node %d: %d of %d confirmed writes in the log in order (missing %q): confirmed %q, the log %q", user, n+1, i, len(c), c[i], c, l[user])
			}
		}
	}
}

// lastIDs follows an SSE stream and keeps its last id; it fails the test
// when the stream gives a snapshot again or an id not above the last.
func lastIDs(t *testing.T, ctx context.Context, p *proc, fatal bool) func() string {
	w := openSSE(t, ctx, p, "")
	var mu sync.Mutex
	var last string
	var prev uint64
	go func() {
		defer func() { _ = recover() }() // the node may die under it
		snapshots := 0
		for {
			line, err := w.r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			if line == "event: snapshot" {
				if snapshots++; fatal && snapshots > 1 {
					t.Errorf("node's watcher: a snapshot again")
				}
			}
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				if _, after, found := strings.Cut(id, "-"); found && fatal {
					if seq, err := strconv.ParseUint(after, 10, 64); err == nil {
						if seq <= prev {
							t.Errorf("node's watcher: id %s after %d", id, prev)
						}
						prev = seq
					}
				}
				mu.Lock()
				last = id
				mu.Unlock()
			}
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// Three presenced, each with its embedded NATS server; a burst of hooks
// and REST writes at every node, a timed presence and a webhook; the node
// that delivers the webhook (presenced and its NATS server) is killed
// with SIGKILL in the middle:
//   - every write a node confirmed is in the user's restore memory, in
//     the order its node made them (none lost);
//   - the timed presence set at the killed node ends once, on another;
//   - the webhook gets every change of the log, in order, with no gap
//     (at least once), taken over by another node;
//   - a watcher of the killed node resumes on another with its last id.
func TestClusterKill9(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	procs := startClusterBinaries(t, bin, 3, "PRESENCED_PRESENCE_HISTORY=1000")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := newKillRun(t, ctx, procs)
	// The node that delivers it is the one killed (k); a and b live on.
	k := r.deliverer()
	a, b := (k+1)%3, (k+2)%3
	lastID := lastIDs(t, ctx, procs[k], false)
	r.timed(a, k)
	started := time.Now()
	r.startBurst()
	r.awaitWrites("every node writing every user", started)
	r.dead.Store(k, true)
	killed := time.Now()
	if err := procs[k].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procs[k].done
	// Nodes a and b go on past the dead node's leases (30 s at most):
	// every user is written again, those it held included.
	r.awaitWrites("nodes a and b writing every user after the kill", killed)
	r.endBurst()
	r.firstDelivery("its node was killed", killed)
	r.checkTimed(b)
	r.checkLogged(a)

	// The watcher of node k resumes on node a.
	from := lastID()
	if from == "" {
		t.Fatal("the watcher of the killed node saw no id")
	}
	sc := openSSE(t, ctx, procs[a], from)
	if _, ev, data := sc.next(t); ev == "snapshot" {
		t.Fatalf("resumed on another node with a snapshot: %s", data)
	}
	sc.resp.Body.Close()

	r.checkMemory(a)
	r.checkWebhook(a)
	procs[a].stop(t)
	procs[b].stop(t)
}

// natsServer is a nats-server process.
type natsServer struct {
	name, url string
	cmd       *exec.Cmd
	done      chan struct{} // closed when it has exited
	out       *bytes.Buffer
}

// startNATSCluster builds nats-server from the module presenced uses and
// starts n of them on loopback, routed to each other, with JetStream, and
// with args besides.
func startNATSCluster(t *testing.T, n int, args ...string) []*natsServer {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	routes := make([]string, n)
	for i := range routes {
		routes[i] = "nats://" + testenv.FreeAddr(t)
	}
	servers := make([]*natsServer, n)
	for i := range servers {
		addr := testenv.FreeAddr(t)
		host, port, _ := net.SplitHostPort(addr)
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, r)
			}
		}
		s := &natsServer{name: fmt.Sprintf("nats%d", i+1), url: "nats://" + addr, done: make(chan struct{}), out: &bytes.Buffer{}}
		argv := append([]string{"-a", host, "-p", port, "-js", "-sd", t.TempDir(), "--server_name", s.name,
			"--cluster_name", "presenced", "--cluster", routes[i], "--routes", strings.Join(peers, ",")}, args...)
		s.cmd = exec.Command(bin, argv...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = s.cmd.Wait()
			close(s.done)
		}()
		t.Cleanup(func() {
			_ = s.cmd.Process.Kill()
			<-s.done
		})
		servers[i] = s
	}
	for _, s := range servers {
		testenv.Eventually(t, s.name+" listening", func() bool {
			c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "nats://"))
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	return servers
}

// leadElsewhere moves the leaders of the key-value buckets off server
// away (asking the leader to step down until another is elected).
func leadElsewhere(t *testing.T, ctx context.Context, servers []*natsServer, away *natsServer, buckets ...string) {
	t.Helper()
	var via string
	for _, s := range servers {
		if s != away {
			via = s.url
		}
	}
	nc, err := nats.Connect(via)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buckets {
		stream := "KV_" + b
		var last string
		leader := func() string {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			s, err := js.Stream(ictx, stream)
			if err != nil {
				last = err.Error()
				return ""
			}
			if s.CachedInfo().Cluster == nil {
				last = "no cluster"
				return ""
			}
			return s.CachedInfo().Cluster.Leader
		}
		testenv.Eventually(t, stream+"'s leader off "+away.name, func() bool {
			switch leader() {
			case "":
				return false // electing
			case away.name:
				_, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 2*time.Second)
				last = fmt.Sprint("stepped down: ", err)
				return false
			}
			return true
		}, func() string { return last })
	}
}

// startNATSNodes starts a presenced on each of urls (PRESENCED_NATS_URL),
// together, with env besides; no Asterisk.
func startNATSNodes(t *testing.T, bin string, urls []string, env ...string) []*proc {
	t.Helper()
	return startNATSNodesWith(t, bin, urls, make([][]string, len(urls)), env...)
}

// startNATSNodesWith is startNATSNodes with settings of each node's own
// (nodeEnv[i], after env).
func startNATSNodesWith(t *testing.T, bin string, urls []string, nodeEnv [][]string, env ...string) []*proc {
	t.Helper()
	procs := make([]*proc, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = launch(t, bin, t.TempDir(), 150*time.Second, append([]string{fmt.Sprintf("PRESENCED_NODE=n%d", i+1),
				"PRESENCED_NATS_URL=" + urls[i], "PRESENCED_ARI_URL=", "PRESENCED_AMI_ADDR=", "PRESENCED_LOG_LEVEL=info", clusterBudget},
				append(env, nodeEnv[i]...)...)...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	awaitClusterSettled(t, procs)
	return procs
}

// Three nats-server processes, and three presenced on them
// (PRESENCED_NATS_URL); the same burst, timed presence and webhook; the
// NATS server that leads the change log is killed with SIGKILL in the
// middle. Nothing a user sees changes: every presenced stays up and
// ready; every confirmed write is in the restore memory in order; the
// timed presence ends; the webhook gets every change in order with no
// gap; each node's watcher goes on, ids rising, with no new snapshot.
func TestClusterNATSKill9(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	servers := startNATSCluster(t, 3)
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.url
	}
	all := strings.Join(urls, ",")
	procs := startNATSNodes(t, bin, []string{all, all, all}, "PRESENCED_PRESENCE_HISTORY=1000")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := newKillRun(t, ctx, procs)
	for i := range procs {
		lastIDs(t, ctx, procs[i], true)
	}
	r.timed(0, 1)
	started := time.Now()
	r.startBurst()
	r.awaitWrites("every node writing every user", started)

	// The change log's leader.
	_, body := procs[0].get(t, "/readyz")
	var rz struct {
		Cluster struct{ Log struct{ Leader string } }
	}
	_ = json.Unmarshal([]byte(body), &rz)
	var victim *natsServer
	for _, s := range servers {
		if s.name == rz.Cluster.Log.Leader {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("the change log's leader %q is none of the servers: %s", rz.Cluster.Log.Leader, body)
	}
	// Only the log's leader goes: the records' and leases' move away
	// first, so that writes go on and only their logging waits.
	leadElsewhere(t, ctx, servers, victim, cluster.RecordsBucket, cluster.LeasesBucket)
	killed := time.Now()
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	failedBefore := make([]int64, len(procs))
	for n := range procs {
		failedBefore[n] = r.failed[n].Load()
	}
	// The cluster elects another leader and writes go on.
	r.awaitWrites("every node writing every user after the leader's kill", killed)
	r.endBurst()
	for n := range procs {
		t.Logf("node %d: %d writes confirmed, %d not (%d after the kill)", n+1, func() (c int) {
			for _, m := range r.confirmed[n] {
				c += len(m)
			}
			return c
		}(), r.failed[n].Load(), r.failed[n].Load()-failedBefore[n])
	}
	for n, p := range procs {
		shown := 0
		for _, l := range strings.Split(p.logText(), "\n") {
			if strings.Contains(l, "cluster:") && shown < 5 {
				t.Logf("node %d: %s", n+1, l)
				shown++
			}
		}
	}
	r.firstDelivery("the log's NATS leader was killed", killed)
	for i, p := range procs {
		if code, body := p.get(t, "/readyz"); code != 200 {
			t.Fatalf("node %d not ready after losing one NATS server of three: %d %s", i+1, code, body)
		}
	}
	r.checkTimed(2)
	r.checkLogged(2)
	r.checkMemory(2)
	r.checkWebhook(2)
	for _, p := range procs {
		p.stop(t)
	}
}
