package filter_test

import (
	"context"
	"slices"
	"testing"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/views/filter"
)

func hintItem(key string, ext hints.ExtensionState, version uint64) change.Change {
	return change.Change{Kind: hints.KindHint, Key: key, Version: version, Value: hints.State{Extension: ext}}
}

func presItem(provider string, st presence.State) change.Change {
	return change.Change{Kind: hints.KindPresence, Key: hints.ProviderKey(provider), Value: hints.ProviderPresence{Value: presence.Value{State: st}}}
}

func hintOf(ev *watch.Event) hints.State {
	st, _ := ev.Value.(hints.State)
	return st
}

var done = func() context.Context { c, cancel := context.WithCancel(context.Background()); cancel(); return c }()

// drain returns everything queued on s without waiting.
func drain(s *watch.Sub) []*watch.Event {
	var out []*watch.Event
	for {
		evs, err := s.Next(done)
		if err != nil {
			return out
		}
		out = append(out, evs...)
	}
}

func TestSnapshotThenChanges(t *testing.T) {
	h := watch.New(watch.Config{})
	h.Append(hintItem("1001@internal", hints.ExtIdle, 1), hintItem("1002@default", hints.ExtBusy, 2), presItem("CustomPresence:1001", presence.Away))
	s, snap := h.Subscribe(filter.Spec{Hints: []string{"1001@internal", "1002"}, Providers: []string{"customPRESENCE:1001"}}.Watch(""), nil)
	defer s.Close()
	if snap.Resumed || snap.Fresh || snap.Seq != 3 || len(snap.Items) != 3 || snap.Epoch != h.Epoch() {
		t.Fatalf("snapshot %+v", snap)
	}
	h.Append(hintItem("1001@internal", hints.ExtInUse, 3), hintItem("1003@internal", hints.ExtInUse, 4))
	evs := drain(s)
	if len(evs) != 1 || evs[0].Seq != 4 || hintOf(evs[0]).Extension != hints.ExtInUse {
		t.Fatalf("events %+v", evs)
	}
	// A stale change (older version) is ignored.
	h.Append(hintItem("1001@internal", hints.ExtBusy, 2))
	if evs := drain(s); len(evs) != 0 {
		t.Fatalf("stale change delivered: %+v", evs)
	}
}

// In a cluster of several sites, a node's hints are published with its
// site, and a watcher's reference without a site means the node's own.
func TestSiteHints(t *testing.T) {
	h := watch.New(watch.Config{Site: "paris"})
	tb := hints.NewTable()
	tb.Sink, tb.Site = h, "paris"
	tb.Put(hints.Hint{Exten: "1001", Context: "internal"})
	for _, f := range []filter.Spec{{Hints: []string{"paris/1001@internal"}}, {Hints: []string{"1001@internal"}}, {All: true}} {
		if err := f.Check(); err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		s, snap := h.Subscribe(f.Watch(h.Site()), nil)
		if len(snap.Items) != 1 || snap.Items[0].Key != "paris/1001@internal" || hintOf(snap.Items[0]).Site != "paris" {
			t.Fatalf("%+v: snapshot %+v", f, snap.Items)
		}
		s.Close()
	}
	s, snap := h.Subscribe(filter.Spec{Hints: []string{"lyon/1001@internal"}}.Watch(h.Site()), nil)
	defer s.Close()
	if len(snap.Items) != 0 {
		t.Fatalf("another site's filter got %+v", snap.Items)
	}
	for _, bad := range []string{"Paris/1001@internal", "/1001", "pa-ris/1001", "paris/", "paris/1001/x"} {
		if err := (filter.Spec{Hints: []string{bad}}).Check(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A watcher of some hints gets, live and in its snapshot, the calls on
// the devices those hints have when it subscribes, the forwards of their
// users and of its CustomPresence providers, and the devices and boxes it
// names; nothing of others.
func TestFilteredCallsMailboxesForwards(t *testing.T) {
	h := watch.New(watch.Config{})
	tb := hints.NewTable()
	tb.Sink = h
	tb.Put(hints.Hint{Exten: "1001", Context: "internal", Devices: []string{"PJSIP/1001", "PJSIP/1001b"}})
	callsOn := func(dev string) change.Change {
		d := calls.DeviceCalls{Device: dev, Calls: []calls.Call{{Channel: dev + "-1", Device: dev, State: calls.Ringing}}}
		return change.Change{Kind: calls.KindCalls, Key: d.Key(), Value: d}
	}
	fwd := func(user string) change.Change {
		return change.Change{Kind: forward.ChangeKind, Key: user, Value: forward.Forwards{User: user, Busy: forward.Forward{Enabled: true, Destination: "2002"}}}
	}
	box := func(b string) change.Change {
		c := voicemail.Count{Mailbox: b, New: 1}
		return change.Change{Kind: voicemail.Kind, Key: c.Key(), Value: c}
	}
	h.Append(callsOn("PJSIP/1001b"), fwd("1001"))
	f := filter.Spec{Hints: []string{"1001@internal"}, Providers: []string{"CustomPresence:1003"}, Devices: []string{"SIP/trunk"}, Mailboxes: []string{"1001@default"}}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	s, snap := h.Subscribe(f.Watch(h.Site()), nil)
	defer s.Close()
	var kinds []change.Kind
	for _, ev := range snap.Items {
		kinds = append(kinds, ev.Kind)
	}
	if len(snap.Items) != 3 || !slices.Contains(kinds, calls.KindCalls) || !slices.Contains(kinds, forward.ChangeKind) {
		t.Fatalf("snapshot %v", kinds)
	}
	h.Append(callsOn("PJSIP/1001"), callsOn("PJSIP/1002"), callsOn("SIP/trunk"), fwd("1001"), fwd("1002"), fwd("1003"), box("1001@default"), box("1002@default"))
	var got []string
	for _, ev := range drain(s) {
		got = append(got, ev.Key)
	}
	want := []string{"calls:PJSIP/1001", "calls:SIP/trunk", "1001", "1003", "1001@default"}
	if !slices.Equal(got, want) {
		t.Fatalf("live %v, want %v", got, want)
	}
	for _, bad := range []filter.Spec{{Devices: []string{"1001"}}, {Devices: []string{"PJSIP/1001,PJSIP/1002"}}, {Mailboxes: []string{"1001"}}, {Mailboxes: []string{"Paris/1001@default"}}} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
