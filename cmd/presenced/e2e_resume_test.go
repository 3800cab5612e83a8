package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/astemu"
)

// sseClient reads one SSE stream of the binary.
type sseClient struct {
	resp *http.Response
	r    *bufio.Reader
}

func openSSE(t *testing.T, ctx context.Context, p *proc, lastID string) *sseClient {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.httpAddr+"/v1/events?all=1", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return &sseClient{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event: its id, type and data.
func (c *sseClient) next(t *testing.T) (id, event, data string) {
	t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && event != "":
			return id, event, data
		}
	}
}

// The must-hold: a watcher that resumes after a restart of the binary gets
// exactly the changes after its id (those before the restart and after),
// in order, and nothing else; after kill -9 it gets a fresh snapshot.
func TestBinaryResumeAcrossRestart(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	p := startBinary(t, bin, dir)
	ast := astemu.New()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	set := func(p *proc, i int) string {
		msg := fmt.Sprintf("change %d", i)
		if c := p.hook(t, ast, "presence/set", "1001", []string{"away", "dnd", "xa"}[i%3], "", msg); c.Var("PRESENCED_RESULT") != "OK" {
			t.Fatalf("hook %d: %v", i, c.Vars())
		}
		return msg
	}
	w := openSSE(t, ctx, p, "")
	if _, ev, _ := w.next(t); ev != "snapshot" {
		t.Fatalf("first event %s", ev)
	}
	var lastID string
	for i := range 3 {
		msg := set(p, i)
		id, ev, data := w.next(t)
		if ev != "presence" || !strings.Contains(data, msg) {
			t.Fatalf("event %s %s, want %s", ev, data, msg)
		}
		lastID = id
	}
	w.resp.Body.Close() // the watcher goes away
	var want []string
	for i := 3; i < 8; i++ {
		want = append(want, set(p, i))
	}
	p.stop(t)
	p = startBinary(t, bin, dir)
	for i := 8; i < 11; i++ {
		want = append(want, set(p, i))
	}
	w = openSSE(t, ctx, p, lastID)
	prev := lastID
	for i, msg := range want {
		id, ev, data := w.next(t)
		if ev != "presence" || !strings.Contains(data, `"message":"`+msg+`"`) {
			t.Fatalf("resumed event %d: %s %s, want %q", i, ev, data, msg)
		}
		epoch, _, _ := strings.Cut(prev, ":")
		var a, b uint64
		fmt.Sscanf(prev[len(epoch)+1:], "%d", &a)
		fmt.Sscanf(id[strings.Index(id, ":")+1:], "%d", &b)
		if !strings.HasPrefix(id, epoch+":") || b != a+1 {
			t.Fatalf("resumed event %d has id %s after %s", i, id, prev)
		}
		prev = id
	}
	// Nothing else: the next event is the next change.
	last := set(p, 11)
	if _, ev, data := w.next(t); ev != "presence" || !strings.Contains(data, last) {
		t.Fatalf("after the resumed events: %s %s", ev, data)
	}
	w.resp.Body.Close()

	// After kill -9 the ids of the run that died may have been given out
	// without being written: a resume from them is a fresh snapshot.
	_ = p.cmd.Process.Kill()
	<-p.done
	p = startBinary(t, bin, dir)
	w = openSSE(t, ctx, p, prev)
	if _, ev, data := w.next(t); ev != "snapshot" || !strings.Contains(data, `"fresh":true`) || !strings.Contains(data, last) {
		t.Fatalf("after kill -9: %s %s", ev, data)
	}
	w.resp.Body.Close()
	p.stop(t)
}
