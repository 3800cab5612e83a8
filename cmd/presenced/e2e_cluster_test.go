package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/cdp"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/internal/testpki"
)

// startClusterBinaries starts n presenced, each embedding a NATS server
// that routes to the others', on loopback; they come up together (each
// waits for the cluster).
func startClusterBinaries(t *testing.T, bin string, n int, env ...string) []*proc {
	t.Helper()
	return startClusterNodes(t, bin, make([][]string, n), env...)
}

// clusterBudget is the write budget of the cluster tests' nodes: they
// hold what a write does, not how soon it answers (a write right after
// the cluster formed, while a bucket still elects its leader, took more
// than the default 2 s on a loaded two-core machine). The tests of a
// cut set the default back.
const clusterBudget = "PRESENCED_WRITE_BUDGET=30s"

// startClusterNodes is startClusterBinaries with settings of each node's
// own (nodeEnv[i]) besides the common env.
func startClusterNodes(t *testing.T, bin string, nodeEnv [][]string, env ...string) []*proc {
	t.Helper()
	// A port picked free may be taken by another process before a node
	// binds it (the machine is shared): start the whole cluster again on
	// other ports, up to three times.
	for try := 1; ; try++ {
		procs, err := tryClusterNodes(t, bin, nodeEnv, env...)
		if err == nil {
			awaitClusterSettled(t, procs)
			return procs
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("a port was taken meanwhile; starting the cluster again: %v", strings.SplitN(err.Error(), "\n", 2)[0])
	}
}

// awaitClusterSettled waits until every node sees the change log with a
// leader and every copy of it current: a cluster that has just formed
// elects its streams' leaders for some seconds, and a write meanwhile
// waits for them (a hook then takes longer than a test gives it).
func awaitClusterSettled(t *testing.T, procs []*proc) {
	t.Helper()
	for i, p := range procs {
		var body string
		testenv.Eventually(t, fmt.Sprintf("node %d seeing the change log settled", i+1), func() bool {
			_, body = p.get(t, "/readyz")
			var rz struct {
				Cluster struct {
					Log struct {
						Leader   string
						Replicas []struct{ Current bool }
					}
				}
			}
			if json.Unmarshal([]byte(body), &rz) != nil || rz.Cluster.Log.Leader == "" || len(rz.Cluster.Log.Replicas) == 0 {
				return false
			}
			for _, r := range rz.Cluster.Log.Replicas {
				if !r.Current {
					return false
				}
			}
			return true
		}, func() string { return body })
	}
}

func tryClusterNodes(t *testing.T, bin string, nodeEnv [][]string, env ...string) ([]*proc, error) {
	n := len(nodeEnv)
	routes := make([]string, n)
	for i := range routes {
		routes[i] = testenv.FreeAddr(t)
	}
	procs := make([]*proc, n)
	errs := make([]error, n)
	// Every test cluster is a secure one, as a cluster across sites must
	// be: a shared secret, and mutual TLS between its servers.
	ca := testpki.NewCA(t, "cluster")
	secretFile := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secretFile, []byte(strings.Repeat("5e", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range n {
		cert, key := ca.Issue(t, fmt.Sprintf("n%d", i+1))
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, r)
			}
		}
		e := append([]string{fmt.Sprintf("PRESENCED_NODE=n%d", i+1), "PRESENCED_NATS_LISTEN=" + testenv.FreeAddr(t),
			"PRESENCED_CLUSTER_LISTEN=" + routes[i], "PRESENCED_CLUSTER_PEERS=" + strings.Join(peers, ","),
			"PRESENCED_ARI_URL=", "PRESENCED_AMI_ADDR=", "PRESENCED_LOG_LEVEL=info", clusterBudget,
			"PRESENCED_CLUSTER_SECRET_FILE=" + secretFile, "PRESENCED_CLUSTER_TLS_CERT=" + cert, "PRESENCED_CLUSTER_TLS_KEY=" + key,
			"PRESENCED_CLUSTER_TLS_CA=" + ca.CertFile}, env...)
		e = append(e, nodeEnv[i]...)
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = launch(t, bin, dir, 150*time.Second, e...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, p := range procs {
				if p != nil {
					_ = p.cmd.Process.Kill()
					<-p.done
				}
			}
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
	}
	return procs, nil
}

type sseEvent struct{ id, event, data string }

// watchSSE opens an SSE stream and sends what it reads on a channel.
func watchSSE(t *testing.T, ctx context.Context, p *proc) <-chan sseEvent {
	t.Helper()
	return watchSSEPath(t, ctx, p, "/v1/events?all=1")
}

// watchSSEPath is watchSSE of another path (a filter, a token).
func watchSSEPath(t *testing.T, ctx context.Context, p *proc, path string) <-chan sseEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.httpAddr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("SSE: %d", resp.StatusCode)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		r := bufio.NewReader(resp.Body)
		var cur sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if cur.event != "" {
					out <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			}
		}
	}()
	return out
}

// Three presenced on one embedded NATS cluster: a hook at one node is
// seen by a watcher of every node exactly once, with one id; the presence
// is read back on another node; a watcher resumes on another node by id.
func TestClusterOneChangeEverywhere(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	conf := filepath.Join(t.TempDir(), "extensions.conf")
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs := startClusterBinaries(t, bin, 3, "PRESENCED_DIALPLAN="+conf)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	streams := make([]<-chan sseEvent, 3)
	for i, p := range procs {
		streams[i] = watchSSE(t, ctx, p)
		if ev := <-streams[i]; ev.event != "snapshot" {
			t.Fatalf("node %d: first event %+v", i+1, ev)
		}
	}
	// A webhook created at node 1: one node delivers it.
	var hooked sync.Mutex
	var hookBodies []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooked.Lock()
		hookBodies = append(hookBodies, string(b))
		hooked.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	wreq, _ := http.NewRequest("POST", "http://"+procs[0].httpAddr+"/v1/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`/hook","providers":["CustomPresence:1001"]}`))
	wreq.Header.Set("Content-Type", "application/json")
	wresp, err := http.DefaultClient.Do(wreq)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(wresp.Body).Decode(&created)
	wresp.Body.Close()
	if wresp.StatusCode != 201 || created.ID == "" {
		t.Fatalf("creating a webhook: %d %+v", wresp.StatusCode, created)
	}
	ast := astemu.New() // one site: one Asterisk for every node
	c := procs[0].hook(t, ast, "presence/set", "1001", "away", "", "Clustered")
	if c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("hook at node 1: %v", c.Vars())
	}
	var ids []string
	for i, s := range streams {
		got := 0
		var id string
		deadline := time.After(30 * time.Second)
	read:
		for {
			select {
			case ev := <-s:
				if ev.event == "presence" && strings.Contains(ev.data, `"Clustered"`) {
					got++
					id = ev.id
				}
			case <-deadline:
				break read
			case <-time.After(2 * time.Second):
				if got > 0 {
					break read // and nothing more came
				}
			}
		}
		if got != 1 {
			t.Fatalf("node %d: the change %d times", i+1, got)
		}
		ids = append(ids, id)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("ids differ: %v", ids)
	}
	// The presence, read on node 3.
	code, body := procs[2].get(t, "/v1/presence/1001")
	var pr struct {
		Presence struct{ State, Message string }
	}
	_ = json.Unmarshal([]byte(body), &pr)
	if code != 200 || pr.Presence.State != "away" || pr.Presence.Message != "Clustered" {
		t.Fatalf("node 3 reads %d %s", code, body)
	}
	// A second change at node 2; a watcher of node 1 that saw the first
	// resumes on node 3 and gets just the second.
	if c := procs[1].hook(t, ast, "presence/set", "1001", "dnd", "", "Second"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("hook at node 2: %v", c.Vars())
	}
	// The second change's record must come from node 1's: restore on node
	// 3 goes back to "Clustered".
	sc := openSSE(t, ctx, procs[2], ids[0])
	for {
		_, ev, data := sc.next(t)
		if ev == "snapshot" {
			t.Fatalf("resume on another node gave a snapshot: %s", data)
		}
		if ev == "presence" && strings.Contains(data, `"Second"`) {
			break
		}
	}
	req, _ := http.NewRequest("POST", "http://"+procs[2].httpAddr+"/v1/presence/1001/restore", nil)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var restored struct {
		Presence struct{ State, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&restored)
	resp.Body.Close()
	if restored.Presence.Message != "Clustered" {
		t.Fatalf("restore on node 3: %d %+v", resp.StatusCode, restored)
	}
	// The webhook got both changes, once each, in order.
	delivered := func() []string {
		hooked.Lock()
		defer hooked.Unlock()
		return slices.Clone(hookBodies)
	}
	testenv.Eventually(t, "the webhook's second delivery", func() bool { return strings.Contains(strings.Join(delivered(), "\n"), `"Second"`) },
		func() string { return strings.Join(delivered(), "\n") })
	// Both changes, once each, in order; the restore made above may
	// already follow them (a third body), nothing else.
	if bodies := delivered(); len(bodies) < 2 || len(bodies) > 3 || !strings.Contains(bodies[0], `"Clustered"`) || !strings.Contains(bodies[1], `"Second"`) ||
		(len(bodies) == 3 && !strings.Contains(bodies[2], `"Clustered"`)) {
		t.Fatalf("webhook deliveries: %s", strings.Join(bodies, "\n"))
	}
	// /readyz: every node names itself and the one node that delivers the
	// webhook; the change log has three replicas.
	delivering := 0
	for i, p := range procs {
		_, body := p.get(t, "/readyz")
		var rz struct {
			Ready   bool
			Cluster struct {
				Node     string
				NATS     string
				Webhooks []string
				Log      struct{ Replicas []struct{ Name string } }
			}
		}
		if err := json.Unmarshal([]byte(body), &rz); err != nil || !rz.Ready || rz.Cluster.Node != fmt.Sprintf("n%d", i+1) ||
			rz.Cluster.NATS == "" || len(rz.Cluster.Log.Replicas) != 2 {
			t.Fatalf("node %d /readyz: %s", i+1, body)
		}
		delivering += len(rz.Cluster.Webhooks)
	}
	if delivering != 1 {
		t.Fatalf("%d nodes deliver the webhook", delivering)
	}
	// Every node lists the cluster's nodes, one of them delivering the
	// webhook (cards are renewed every 5 s); a node that stops leaves the
	// list.
	nodesAt := func(p *proc) (names []string, delivering int) {
		_, body := p.get(t, "/readyz")
		var rz struct {
			Cluster struct {
				Nodes []struct {
					Node     string
					Webhooks []string
				}
			}
		}
		_ = json.Unmarshal([]byte(body), &rz)
		for _, n := range rz.Cluster.Nodes {
			names = append(names, n.Node)
			delivering += len(n.Webhooks)
		}
		return names, delivering
	}
	for i, p := range procs {
		var names []string
		var d int
		testenv.Eventually(t, fmt.Sprintf("node %d listing the three nodes, one delivering the webhook", i+1),
			func() bool { names, d = nodesAt(p); return fmt.Sprint(names) == "[n1 n2 n3]" && d == 1 },
			func() string { return fmt.Sprintf("nodes %v, %d delivering the webhook", names, d) })
	}
	_, metrics := procs[0].get(t, "/metrics")
	found := false
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "presenced_cluster_nodes{") {
			found = strings.HasSuffix(l, " 3")
			if !found {
				t.Fatalf("metrics: %s", l)
			}
		}
	}
	if !found {
		t.Fatal("no presenced_cluster_nodes in /metrics")
	}
	// Its streams' leaders, if it held any, are elected again: node 1's
	// /readyz may say it cannot read the cluster meanwhile.
	procs[2].stop(t)
	var names []string
	testenv.Eventually(t, "node 1 listing n1 and n2 after node 3 stopped", func() bool { names, _ = nodesAt(procs[0]); return fmt.Sprint(names) == "[n1 n2]" },
		func() string { _, body := procs[0].get(t, "/readyz"); return body })
	for _, p := range procs[:2] {
		p.stop(t)
	}
}

// readSSE collects, from each stream, the events ok selects until none
// came for quiet (or 30 s passed).
func readSSE(streams []<-chan sseEvent, quiet time.Duration, ok func(sseEvent) bool) [][]sseEvent {
	out := make([][]sseEvent, len(streams))
	for i, s := range streams {
		deadline := time.After(30 * time.Second)
	read:
		for {
			select {
			case ev := <-s:
				if ok(ev) {
					out[i] = append(out[i], ev)
				}
			case <-deadline:
				break read
			case <-time.After(quiet):
				if len(out[i]) > 0 {
					break read
				}
			}
		}
	}
	return out
}

// Two sites, Paris (nodes 1 and 2, one Asterisk) and Lyon (node 3, its
// own Asterisk), each read over AMI: a hook at Paris reaches Lyon's
// Asterisk; every node's watcher sees the change once, with one id, and
// each site's hint named with its site; a phone's change in Lyon's
// Asterisk reaches Paris's, once; and nothing echoes back and forth.
func TestClusterSites(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	hint := amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", Status: 0, StatusText: "Idle"}
	// One Asterisk a site, behind a fake ARI and a fake AMI.
	site := func(hs ...amitest.Hint) (*aritest.Server, *amitest.Server) {
		ariSrv, amiSrv := fakeAsterisk(t)
		amiSrv.SetHints(hs...)
		return ariSrv, amiSrv
	}
	// Paris, read by nodes 1 and 2 (each its own ARI application); Lyon,
	// with a hint of Paris's 2001 (cross-site BLF).
	parisARI, parisAMI := site(hint, amitest.Hint{Exten: "2001", Context: "internal", App: "PJSIP/2001,CustomPresence:2001", StatusText: "Idle"})
	parisAst := parisARI.Ast
	parisARI.SetDevice("PJSIP/1001", "NOT_INUSE")
	parisARI.SetDevice("PJSIP/2001", "NOT_INUSE")
	lyonARI, lyonAMI := site(hint, amitest.Hint{Exten: "2001", Context: "internal", App: "Stasis:presenced-remote-paris-2001,CustomPresence:2001", StatusText: "Unavailable", Status: 4})
	lyonAst := lyonARI.Ast
	lyonARI.SetDevice("PJSIP/1001", "NOT_INUSE")
	amiEnv := func(srv *amitest.Server, name string) []string {
		return []string{"PRESENCED_SITE=" + name, "PRESENCED_AMI_ADDR=" + srv.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=pw",
			"PRESENCED_REMOTE_CONTEXT=internal"}
	}
	ariEnv := func(srv *aritest.Server, app string) []string {
		return []string{"PRESENCED_ARI_URL=" + srv.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari", "PRESENCED_ARI_APP=" + app}
	}
	procs := startClusterNodes(t, bin, [][]string{
		append(amiEnv(parisAMI, "paris"), ariEnv(parisARI, "presenced-n1")...),
		append(amiEnv(parisAMI, "paris"), ariEnv(parisARI, "presenced-n2")...),
		append(amiEnv(lyonAMI, "lyon"), ariEnv(lyonARI, "presenced")...)})
	defer func() {
		for _, p := range procs {
			p.stop(t)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	streams := make([]<-chan sseEvent, len(procs))
	for i, p := range procs {
		streams[i] = watchSSE(t, ctx, p)
		if ev := <-streams[i]; ev.event != "snapshot" {
			t.Fatalf("node %d: first event %+v", i+1, ev)
		}
	}
	presenceOf := func(ast *astemu.Asterisk) string {
		st, _, msg, _ := ast.Presence("CustomPresence:1001")
		return st + " " + msg
	}
	waitFor := func(what string, ok func() bool) { t.Helper(); testenv.Eventually(t, what, ok) }
	// once: every node's watcher sees the presence change once, and each
	// site's hint change once, all with the same ids everywhere.
	once := func(what, text string) {
		t.Helper()
		got := readSSE(streams, 3*time.Second, func(ev sseEvent) bool {
			return (ev.event == "presence" || ev.event == "hint") && strings.Contains(ev.data, text)
		})
		for i, evs := range got {
			n := map[string]int{}
			for _, ev := range evs {
				kind := ev.event
				if ev.event == "hint" {
					var h struct{ Site, Exten, Context string }
					_ = json.Unmarshal([]byte(ev.data), &h)
					kind = h.Site + "/" + h.Exten + "@" + h.Context
				}
				n[kind]++
			}
			if len(n) != 3 || n["presence"] != 1 || n["paris/1001@internal"] != 1 || n["lyon/1001@internal"] != 1 {
				t.Fatalf("%s: node %d saw %v: %+v", what, i+1, n, evs)
			}
		}
		idsOf := func(evs []sseEvent) []string {
			var ids []string
			for _, ev := range evs {
				ids = append(ids, ev.id)
			}
			slices.Sort(ids)
			return ids
		}
		for i := 1; i < len(got); i++ {
			if !slices.Equal(idsOf(got[i]), idsOf(got[0])) {
				t.Fatalf("%s: node %d ids %v, node 1 %v", what, i+1, idsOf(got[i]), idsOf(got[0]))
			}
		}
	}

	// Every node has read its site's device states from ARI (AMI's hint
	// list came first): the hook below then changes presence only, and
	// each site's hint once.
	waitFor("every node knows its site's PJSIP/1001 from ARI", func() bool {
		for _, p := range procs {
			_, body := p.get(t, "/v1/hints/1001@internal")
			if !strings.Contains(body, `"device_state":"NOT_INUSE"`) {
				return false
			}
		}
		return true
	})
	if c := procs[0].hook(t, parisAst, "presence/set", "1001", "away", "", "Sites"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("hook at Paris: %v", c.Vars())
	}
	waitFor("Lyon's Asterisk holds the presence set at Paris", func() bool { return presenceOf(lyonAst) == "away Sites" })
	once("the hook at Paris", `"Sites"`)

	// A phone in Lyon: Asterisk's events reach node 3, and Paris follows.
	lyonAMI.SetPresence("CustomPresence:1001", amitest.Presence{State: "dnd", Message: "Phone"})
	waitFor("Paris's Asterisk holds the Lyon phone's dnd", func() bool { return presenceOf(parisAst) == "dnd Phone" })
	once("the phone in Lyon", `"Phone"`)
	// Settled: neither Asterisk is written again.
	writes := func(srv *amitest.Server) int {
		n := 0
		for _, a := range srv.Actions() {
			if strings.EqualFold(a, "Setvar") {
				n++
			}
		}
		return n
	}
	// Every node's watcher has seen the change once (above): a write it
	// set off would have come by now; a second gives a straggler time.
	pw, lw := writes(parisAMI), writes(lyonAMI)
	time.Sleep(time.Second)
	if writes(parisAMI) != pw || writes(lyonAMI) != lw {
		t.Fatalf("Asterisk written again after settling: Paris %d -> %d, Lyon %d -> %d", pw, writes(parisAMI), lw, writes(lyonAMI))
	}
	if presenceOf(parisAst) != "dnd Phone" || presenceOf(lyonAst) != "dnd Phone" {
		t.Fatalf("after settling: Paris %q, Lyon %q", presenceOf(parisAst), presenceOf(lyonAst))
	}

	// Cross-site BLF: Paris's 2001 rings; Lyon's device for it follows.
	remote := "Stasis:presenced-remote-paris-2001"
	waitFor("Lyon's device shows Paris's 2001 idle", func() bool { return lyonARI.Device(remote) == "NOT_INUSE" })
	parisARI.SetDevice("PJSIP/2001", "RINGING")
	waitFor("Lyon's device shows Paris's 2001 ringing", func() bool { return lyonARI.Device(remote) == "RINGING" })
	parisARI.SetDevice("PJSIP/2001", "INUSE")
	waitFor("Lyon's device shows Paris's 2001 in use", func() bool { return lyonARI.Device(remote) == "INUSE" })

	// The board at Lyon: a tile for each site's 1001, named with its site,
	// and the cluster's three nodes with their sites.
	if _, err := os.Stat(cdp.Path); err != nil && os.Getenv("PRESENCED_BROWSER_TESTS") != "require" {
		t.Logf("the board's part skipped: %s not installed", cdp.Path)
		return
	}
	page, err := browser(t).Open(ctx, "http://"+procs[2].httpAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	const want = `(() => {
		const tiles = [...document.querySelectorAll('.tile')].map(t => t.querySelector('.ext').textContent + t.querySelector('.ctx').textContent).sort().join('|');
		const rows = [...document.querySelectorAll('#cluster-nodes tr')].map(r => r.cells[0].textContent + ' ' + r.cells[1].textContent).join('|');
		return tiles === '1001 lyon|1001 paris|2001 lyon|2001 paris' && rows === 'n1 paris|n2 paris|n3 (this) lyon' &&
			!document.getElementById('cluster').hidden && document.getElementById('cluster-summary').textContent.includes('site lyon');
	})()`
	if err := page.WaitFor(wctx, want); err != nil {
		var text string
		_ = page.Eval(ctx, "document.body.innerText", &text)
		t.Fatalf("the board at Lyon: %v\npage:\n%s", err, text)
	}
	if err := page.Screenshot(ctx, filepath.Join(artifacts(t), "cluster.png")); err != nil {
		t.Log(err)
	}
}
