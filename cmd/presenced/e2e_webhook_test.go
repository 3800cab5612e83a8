package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// The webhook must-hold against the binary: a target that answers 500,
// presenced restarted in the middle, the target recovers: every change,
// once, in order, each signed as the README says.
func TestBinaryWebhookOutageAndRestart(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var mu sync.Mutex
	down := true
	type got struct {
		body      []byte
		sig, ts   string
		eventID   string
		answered  int
		userAgent string
	}
	var hits []got
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		h := got{body: b, sig: r.Header.Get("Presenced-Signature"), ts: r.Header.Get("Presenced-Timestamp"),
			eventID: r.Header.Get("Presenced-Event-Id"), answered: 200, userAgent: r.UserAgent()}
		if down {
			h.answered = 500
		}
		hits = append(hits, h)
		w.WriteHeader(h.answered)
	}))
	defer target.Close()
	const admin = "admin-token-0123456789"
	env := []string{"PRESENCED_API_TOKENS=admin:" + admin, "PRESENCED_WEBHOOK_RETRY_MAX=1s"}
	p := startBinary(t, bin, dir, env...)
	req, _ := http.NewRequest("POST", "http://"+p.httpAddr+"/v1/webhooks",
		strings.NewReader(`{"url":"`+target.URL+`/presence","providers":["CustomPresence:1001"],"description":"CRM"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID, Secret string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 201 || created.Secret == "" || !strings.HasPrefix(created.ID, "wh_") {
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}

	ast := astemu.New()
	var want []string
	set := func(p *proc, i int) {
		msg := fmt.Sprintf("change %d", i)
		if c := p.hook(t, ast, "presence/set", "1001", []string{"away", "dnd", "xa"}[i%3], "", msg); c.Var("PRESENCED_RESULT") != "OK" {
			t.Fatalf("hook %d: %v", i, c.Vars())
		}
		want = append(want, msg)
	}
	for i := range 10 {
		set(p, i)
	}
	testenv.Eventually(t, "failed attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hits) >= 2
	})
	p.stop(t)
	p = startBinary(t, bin, dir, env...)
	for i := 10; i < 20; i++ {
		set(p, i)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	var delivered []got
	testenv.Eventually(t, "every change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		delivered = delivered[:0]
		for _, h := range hits {
			if h.answered == 200 {
				delivered = append(delivered, h)
			}
		}
		return len(delivered) >= len(want)
	})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != len(want) {
		t.Fatalf("%d deliveries, want %d", len(delivered), len(want))
	}
	for i, h := range delivered {
		var ev struct {
			ID       string
			Type     string
			Provider string
			Presence struct{ State, Message string }
		}
		if err := json.Unmarshal(h.body, &ev); err != nil || ev.Type != "presence" || ev.Presence.Message != want[i] || ev.ID != h.eventID {
			t.Fatalf("delivery %d: %s (%v), want %q", i, h.body, err, want[i])
		}
		// Verify as the README tells a receiver to.
		mac := hmac.New(sha256.New, []byte(created.Secret))
		mac.Write([]byte(h.ts + "." + string(h.body)))
		if !hmac.Equal([]byte(h.sig), []byte("v1="+hex.EncodeToString(mac.Sum(nil)))) {
			t.Fatalf("delivery %d: signature %s does not verify", i, h.sig)
		}
		if !strings.HasPrefix(h.userAgent, "presenced/") {
			t.Fatalf("user agent %q", h.userAgent)
		}
	}
	p.stop(t)
}

// kill -9 while a webhook delivers: after the restart deliveries resume
// from the stored cursor: nothing journalled is missing, and at most one
// batch (256) is delivered again, with the ids it had.
func TestBinaryWebhookSurvivesKill9(t *testing.T) {
	testenv.Long(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	var mu sync.Mutex
	type got struct{ id, msg string }
	var hits []got
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev struct {
			ID       string
			Presence struct{ Message string }
		}
		_ = json.Unmarshal(b, &ev)
		time.Sleep(5 * time.Millisecond) // a target that takes its time
		mu.Lock()
		hits = append(hits, got{ev.ID, ev.Presence.Message})
		mu.Unlock()
	}))
	defer target.Close()
	const admin = "admin-token-0123456789"
	env := []string{"PRESENCED_API_TOKENS=admin:" + admin}
	p := startBinary(t, bin, dir, env...)
	req, _ := http.NewRequest("POST", "http://"+p.httpAddr+"/v1/webhooks",
		strings.NewReader(`{"url":"`+target.URL+`/presence","providers":["CustomPresence:1001"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	// The journal entries the webhook has, cursor + backlog, over the API.
	journalled := func(p *proc) uint64 {
		req, _ := http.NewRequest("GET", "http://"+p.httpAddr+"/v1/webhooks/"+created.ID, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var info struct {
			Status struct{ Cursor, Backlog uint64 }
		}
		_ = json.NewDecoder(resp.Body).Decode(&info)
		return info.Status.Cursor + info.Status.Backlog
	}
	ast := astemu.New()
	const n = 600
	for i := range n {
		if c := p.hook(t, ast, "presence/set", "1001", []string{"away", "dnd", "xa"}[i%3], "", fmt.Sprintf("change %d", i)); c.Var("PRESENCED_RESULT") != "OK" {
			t.Fatalf("hook %d: %v", i, c.Vars())
		}
	}
	testenv.Eventually(t, "every change journalled", func() bool { return journalled(p) >= n })
	testenv.Eventually(t, "deliveries under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hits) >= 300
	})
	_ = p.cmd.Process.Kill() // SIGKILL: nothing is saved on the way out
	<-p.done
	mu.Lock()
	before := len(hits)
	mu.Unlock()
	p = startBinary(t, bin, dir, env...)
	testenv.Eventually(t, "every change delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, h := range hits {
			seen[h.msg] = true
		}
		return len(seen) >= n
	})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	ids := map[string]string{}
	repeated := 0
	for _, h := range hits {
		if id, ok := ids[h.msg]; ok {
			repeated++
			if id != h.id {
				t.Fatalf("%q delivered again with id %s, first %s", h.msg, h.id, id)
			}
		}
		ids[h.msg] = h.id
	}
	for i := range n {
		if _, ok := ids[fmt.Sprintf("change %d", i)]; !ok {
			t.Fatalf("change %d never delivered", i)
		}
	}
	t.Logf("%d delivered before kill -9, %d in all, %d repeated", before, len(hits), repeated)
	if repeated > 256 {
		t.Fatalf("%d deliveries repeated after kill -9, more than one batch", repeated)
	}
	p.stop(t)
}
