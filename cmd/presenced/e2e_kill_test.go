package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/fastagi/agitest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/webhook"
)

// restPresence sets (PUT) or restores (POST .../restore) a user's
// presence at a node, and returns the status and the presence.
func restPresence(p *proc, method, path, body string) (int, string, string) {
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, "http://"+p.httpAddr+path, rd)
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

// Three presenced, each with its embedded NATS server; a burst of hooks
// and REST writes at every node, a timed presence and a webhook; node 1
// (presenced and its NATS server) is killed with SIGKILL in the middle:
//   - every write a node confirmed is in the user's restore memory, in
//     the order its node made them (none lost);
//   - the timed presence set at node 1 ends once, on another node;
//   - the webhook gets every change of the log, in order, with no gap
//     (at least once), delivered by another node if node 1 had it;
//   - a watcher of node 1 resumes on node 2 with its last id.
func TestClusterKill9(t *testing.T) {
	bin := buildBinary(t)
	procs := startClusterBinaries(t, bin, 3, "PRESENCED_PRESENCE_HISTORY=1000")
	ast := astemu.New()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The webhook, created at node 1 (which then likely delivers it).
	var hmu sync.Mutex
	var hookIDs []uint64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, err := strconv.ParseUint(r.Header.Get(webhook.EventIDHeader), 10, 64); err == nil {
			hmu.Lock()
			hookIDs = append(hookIDs, id)
			hmu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	req, _ := http.NewRequest("POST", "http://"+procs[0].httpAddr+"/v1/webhooks", strings.NewReader(`{"url":"`+rcv.URL+`/hook","all":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("creating the webhook: %v %v", resp, err)
	}
	resp.Body.Close()

	// A watcher of node 1.
	w1 := openSSE(t, ctx, procs[0], "")
	var lastID string
	var lmu sync.Mutex
	go func() {
		defer func() { _ = recover() }() // the node dies under it
		for {
			line, err := w1.r.ReadString('\n')
			if err != nil {
				return
			}
			if id, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "id: "); ok {
				lmu.Lock()
				lastID = id
				lmu.Unlock()
			}
		}
	}()

	// The timed presence, set at node 1 over "available" set at node 2.
	if c := procs[1].hook(t, ast, "presence/set", "3001", "available"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("set 3001: %v", c.Vars())
	}
	if c := procs[0].hook(t, ast, "presence/set?for=4s", "3001", "away", "", "Timed"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("timed set 3001: %v", c.Vars())
	}

	// The burst: each node sets 2001 over and over, hooks and REST in
	// turn, and keeps what was confirmed, in its order.
	confirmed := make([][]string, 3)
	var dead sync.Map
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for n := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, d := dead.Load(n); d {
					return
				}
				msg := fmt.Sprintf("n%d-%d", n+1, i)
				state := []string{"away", "dnd"}[i%2]
				ok := false
				if i%3 == 0 {
					code, _, got := restPresence(procs[n], "PUT", "/v1/presence/2001", `{"state":"`+state+`","message":"`+msg+`"}`)
					ok = code == 200 && got == msg
				} else {
					c := &agitest.Call{Ast: ast, Script: "presence/set", Args: []string{"2001", state, "", msg}, CallerID: "1001"}
					cctx, ccancel := context.WithTimeout(ctx, 40*time.Second)
					err := c.Run(cctx, procs[n].addr)
					ccancel()
					ok = err == nil && c.Var("PRESENCED_RESULT") == "OK"
				}
				if ok {
					confirmed[n] = append(confirmed[n], msg)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	dead.Store(0, true)
	if err := procs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procs[0].done
	// Nodes 2 and 3 go on past the dead node's lease (30 s at most).
	time.Sleep(35 * time.Second)
	close(stop)
	wg.Wait()
	for n, c := range confirmed {
		if len(c) == 0 && n > 0 {
			t.Fatalf("node %d confirmed nothing", n+1)
		}
	}

	// The timed presence ended once: 3001 is available again.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, state, _ := restPresence(procs[2], "GET", "/v1/presence/3001", "")
		if (code == 200 || code == 202) && state == "available" {
			break
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, l := range strings.Split(procs[2].logText()+procs[1].logText(), "\n") {
				if strings.Contains(l, "3001") || strings.Contains(l, "timed") {
					lines = append(lines, l)
				}
			}
			t.Fatalf("3001 at node 3: %d %s\n%s", code, state, strings.Join(lines, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The watcher of node 1 resumes on node 2.
	lmu.Lock()
	from := lastID
	lmu.Unlock()
	if from == "" {
		t.Fatal("the watcher of node 1 saw no id")
	}
	sc := openSSE(t, ctx, procs[1], from)
	if _, ev, data := sc.next(t); ev == "snapshot" {
		t.Fatalf("resumed on node 2 with a snapshot: %s", data)
	}
	sc.resp.Body.Close()

	// Every confirmed write is in 2001's restore memory, in its node's
	// order: walk it back with restore.
	var walked []string
	if _, _, msg := restPresence(procs[1], "GET", "/v1/presence/2001", ""); msg != "" {
		walked = append(walked, msg) // the latest, then what restore goes back to
	}
	for range 5000 {
		code, state, msg := restPresence(procs[1], "POST", "/v1/presence/2001/restore", "")
		if code != 200 && code != 202 { // 202: pending, with no AMI to write it
			t.Fatalf("restore: %d", code)
		}
		if state == "not_set" || msg == "" {
			break
		}
		walked = append(walked, msg)
	}
	slices.Reverse(walked)
	for n, c := range confirmed {
		i := 0
		for _, m := range walked {
			if i < len(c) && m == c[i] {
				i++
			}
		}
		if i != len(c) {
			t.Fatalf("node %d: %d of %d confirmed writes in order in the restore memory (missing %q)", n+1, i, len(c), c[i])
		}
	}

	// The webhook: every change from its first to the log's last, in
	// order, none missing.
	_, body := procs[1].get(t, "/readyz")
	var rz struct {
		Cluster struct{ Log struct{ Last uint64 } }
	}
	_ = json.Unmarshal([]byte(body), &rz)
	head := rz.Cluster.Log.Last
	deadline = time.Now().Add(60 * time.Second)
	for {
		hmu.Lock()
		ids := slices.Clone(hookIDs)
		hmu.Unlock()
		uniq := slices.Clone(ids)
		slices.Sort(uniq)
		uniq = slices.Compact(uniq)
		if len(uniq) > 0 && uniq[len(uniq)-1] >= head {
			for i := 1; i < len(uniq); i++ {
				if uniq[i] != uniq[i-1]+1 {
					t.Fatalf("webhook: a gap, %d then %d", uniq[i-1], uniq[i])
				}
			}
			seen := map[uint64]bool{}
			for i, id := range ids {
				if i > 0 && id <= ids[i-1] && !seen[id] {
					t.Fatalf("webhook: %d after %d, not a repeat", id, ids[i-1])
				}
				seen[id] = true
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook: %d events, up to %v, head %d", len(uniq), uniq[len(uniq)-1:], head)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range procs[1:] {
		p.stop(t)
	}
}
