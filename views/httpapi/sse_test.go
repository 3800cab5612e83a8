package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

type sseEvent struct{ id, event, data string }

// sseStream connects and returns a function reading the next event.
func sseStream(t *testing.T, url, lastID string) (func() sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	lines := make(chan string, 10000)
	go func() {
		defer close(lines)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	next := func() sseEvent {
		t.Helper()
		var ev sseEvent
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				switch {
				case l == "":
					if ev.event != "" {
						return ev
					}
				case strings.HasPrefix(l, "id: "):
					ev.id = l[4:]
				case strings.HasPrefix(l, "event: "):
					ev.event = l[7:]
				case strings.HasPrefix(l, "data: "):
					ev.data = l[6:]
				}
			case <-timeout:
				t.Fatal("no event")
			}
		}
	}
	return next, func() { cancel(); resp.Body.Close() }
}

func hintItem(tb *hints.Table, exten string, d hints.DeviceState) []change.Change {
	var out []change.Change
	for _, st := range tb.SetDevice("PJSIP/"+exten, d) {
		out = append(out, change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
	}
	return out
}

func TestSSEResume(t *testing.T) {
	hub := watch.New(watch.Config{History: 1000})
	tb := hints.NewTable()
	for _, e := range []string{"1001", "1002"} {
		st, _ := tb.Put(hints.Hint{Context: "internal", Exten: e, Devices: []string{"PJSIP/" + e}})
		hub.Append(change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
	}
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Hub: hub, Hints: tb, Log: zerolog.Nop()})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := "http://" + s.Addr().String() + "/v1/events?hints=1001@internal"

	next, stop := sseStream(t, url, "")
	snap := next()
	if snap.event != "snapshot" || !strings.Contains(snap.data, `"exten":"1001"`) || strings.Contains(snap.data, `"exten":"1002"`) {
		t.Fatalf("snapshot %+v", snap)
	}
	states := []hints.DeviceState{hints.InUse, hints.NotInUse}
	hub.Append(hintItem(tb, "1001", hints.Ringing)...)
	last := next()
	if last.event != "hint" || !strings.Contains(last.data, `"state":"Ringing"`) {
		t.Fatalf("change %+v", last)
	}
	stop()

	// 100 changes while away (and changes of a hint not watched).
	var want []string
	for i := range 100 {
		hub.Append(hintItem(tb, "1002", states[i%2])...)
		hub.Append(hintItem(tb, "1001", states[i%2])...)
		want = append(want, states[i%2].String())
	}
	next, stop = sseStream(t, url, last.id)
	defer stop()
	prevSeq := seqOf(t, last.id)
	for i, w := range want {
		ev := next()
		var st hints.State
		if ev.event != "hint" || json.Unmarshal([]byte(ev.data), &st) != nil || st.Exten != "1001" || st.Device.String() != w {
			t.Fatalf("missed change %d: %+v, want device %s", i, ev, w)
		}
		if seq := seqOf(t, ev.id); seq <= prevSeq {
			t.Fatalf("sequence went back: %d after %d", seq, prevSeq)
		} else {
			prevSeq = seq
		}
	}
	// Nothing else came: the next thing is the next change.
	hub.Append(hintItem(tb, "1001", hints.Busy)...)
	if ev := next(); !strings.Contains(ev.data, `"state":"Busy"`) {
		t.Fatalf("after the missed changes: %+v", ev)
	}

	// An id of another run of presenced: a fresh snapshot, marked.
	next3, stop3 := sseStream(t, url, "0123456789abcdef:5")
	defer stop3()
	if ev := next3(); ev.event != "snapshot" || !strings.Contains(ev.data, `"fresh":true`) {
		t.Fatalf("another epoch: %+v", ev)
	}
}

func seqOf(t *testing.T, id string) uint64 {
	t.Helper()
	var seq uint64
	if _, err := fmt.Sscanf(id[strings.IndexByte(id, ':')+1:], "%d", &seq); err != nil {
		t.Fatalf("id %q", id)
	}
	return seq
}

func TestSSEBadRequests(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Hub: watch.New(watch.Config{}), Log: zerolog.Nop()})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String() + "/v1/events"
	for _, tc := range []struct{ url, last string }{{base, ""}, {base + "?all=1", "garbage"}} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.last != "" {
			req.Header.Set("Last-Event-ID", tc.last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s (%q): %d", tc.url, tc.last, resp.StatusCode)
		}
	}
	// Close ends open streams rather than waiting for them.
	next, stop := sseStream(t, base+"?all=1", "")
	defer stop()
	next()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for an open event stream")
	}
}

// A presence event has the documented shape: provider, presence, invalid.
func TestSSEPresenceShape(t *testing.T) {
	hub := watch.New(watch.Config{})
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Hub: hub, Log: zerolog.Nop()})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next, stop := sseStream(t, "http://"+s.Addr().String()+"/v1/events?providers=CustomPresence:1001", "")
	defer stop()
	if ev := next(); ev.event != "snapshot" {
		t.Fatalf("first %+v", ev)
	}
	key := hints.ProviderKey("CustomPresence:1001")
	hub.Append(change.Change{Kind: hints.KindPresence, Key: key, Version: 1, Value: hints.ProviderPresence{Value: presence.Value{State: presence.Away, Message: "Lunch"}}})
	ev := next()
	var got map[string]any
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil {
		t.Fatal(err)
	}
	p, _ := got["presence"].(map[string]any)
	if ev.event != "presence" || got["provider"] != key || p["state"] != "away" || p["message"] != "Lunch" || len(got) != 2 {
		t.Fatalf("presence event %s", ev.data)
	}
}
