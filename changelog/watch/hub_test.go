package watch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
)

func hintItem(key string, ext hints.ExtensionState, version uint64) change.Change {
	return change.Change{Kind: hints.KindHint, Key: key, Version: version, Value: hints.State{Extension: ext}}
}

// hintOf is the hint state an event carries.
func hintOf(ev *Event) hints.State {
	st, _ := ev.Value.(hints.State)
	return st
}

var done = func() context.Context { c, cancel := context.WithCancel(context.Background()); cancel(); return c }()

// drain returns everything queued on s without waiting.
func drain(s *Sub) []*Event {
	var out []*Event
	for {
		evs, err := s.Next(done)
		if err != nil {
			return out
		}
		out = append(out, evs...)
	}
}

func TestResume(t *testing.T) {
	h := New(Config{History: 5})
	all := Filter{All: true}
	for i := range 3 {
		h.Append(hintItem(fmt.Sprint(i), hints.ExtIdle, uint64(i+1)))
	}
	s, snap := h.Subscribe(all, nil)
	s.Close()
	h.Append(hintItem("a", hints.ExtInUse, 10), hintItem("b", hints.ExtInUse, 11))
	s, snap2 := h.Subscribe(all, &snap.Position)
	if !snap2.Resumed || len(snap2.Items) != 0 {
		t.Fatalf("resume: %+v", snap2)
	}
	if evs := drain(s); len(evs) != 2 || evs[0].Seq != 4 || evs[1].Seq != 5 {
		t.Fatalf("missed events %+v", evs)
	}
	s.Close()
	// Out of history: a fresh snapshot, marked.
	for i := range 10 {
		h.Append(hintItem("c", hints.ExtensionState(i%2), uint64(20+i)))
	}
	s, snap3 := h.Subscribe(all, &snap.Position)
	if snap3.Resumed || !snap3.Fresh || len(snap3.Items) != 6 {
		t.Fatalf("out of history: %+v", snap3)
	}
	s.Close()
	// Another epoch (an earlier run of presenced): fresh.
	_, snap4 := New(Config{}).Subscribe(all, &Position{Epoch: h.Epoch(), Seq: 1})
	if !snap4.Fresh {
		t.Fatal("another epoch resumed")
	}
}

func TestCoalesceAndDrop(t *testing.T) {
	now := time.Unix(1000, 0)
	h := New(Config{Queue: 4, HopelessAfter: time.Minute, Now: func() time.Time { return now }})
	s, _ := h.Subscribe(Filter{All: true}, nil)
	for i := range 10 {
		h.Append(hintItem([]string{"a", "b"}[i%2], hints.ExtensionState(i), uint64(i+1)))
	}
	evs := drain(s)
	if len(evs) > 4 || s.Coalesced() == 0 {
		t.Fatalf("not coalesced: %d events, %d coalesced", len(evs), s.Coalesced())
	}
	final := map[string]hints.ExtensionState{}
	for i, ev := range evs {
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Fatal("sequence went back")
		}
		final[ev.Key] = hintOf(ev).Extension
	}
	if final["a"] != 8 || final["b"] != 9 {
		t.Fatalf("latest states lost: %v", final)
	}
	// More distinct keys than the queue holds, for longer than HopelessAfter.
	for i := range 6 {
		h.Append(hintItem(fmt.Sprint("k", i), hints.ExtIdle, uint64(100+i)))
	}
	now = now.Add(2 * time.Minute)
	h.Append(hintItem("k9", hints.ExtIdle, 200))
	var dropped *DroppedError
	if _, err := s.Next(done); !errors.As(err, &dropped) {
		t.Fatalf("Next after drop: %v", err)
	}
	if h.Subscribers() != 0 {
		t.Fatal("dropped subscriber still registered")
	}
	if st := h.Stats(); st.Dropped != 1 || st.Coalesced != s.Coalesced() || st.Published != 17 {
		t.Fatalf("stats %+v (sub coalesced %d)", st, s.Coalesced())
	}
}

func TestRemovedHintLeavesSnapshots(t *testing.T) {
	h := New(Config{})
	h.Append(hintItem("1@c", hints.ExtIdle, 1))
	h.Append(change.Change{Kind: hints.KindHint, Key: "1@c", Version: 2, Value: hints.State{Removed: true}})
	h.Append(hintItem("1@c", hints.ExtIdle, 1)) // stale: must not bring it back
	if _, snap := h.Subscribe(Filter{All: true}, nil); len(snap.Items) != 0 {
		t.Fatalf("snapshot %+v", snap.Items)
	}
}

func TestCloseWakesNext(t *testing.T) {
	h := New(Config{})
	s, _ := h.Subscribe(Filter{All: true}, nil)
	got := make(chan error, 1)
	go func() { _, err := s.Next(context.Background()); got <- err }()
	s.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// Many subscribers, resumes, slow consumers and drops, fed by a real hint
// table from several goroutines: every subscriber's final view equals the
// table's final state, and sequence numbers never go back.
func TestRandomized(t *testing.T) {
	before := runtime.NumGoroutine()
	now := time.Unix(0, 0)
	var clock sync.Mutex
	h := New(Config{History: 200, Queue: 16, HopelessAfter: time.Second, Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	tb := hints.NewTable()
	const nHints = 40
	var keys []string
	for i := range nHints {
		hn := hints.Hint{Context: "internal", Exten: fmt.Sprint(1000 + i), Devices: []string{fmt.Sprint("PJSIP/", 1000+i), fmt.Sprint("PJSIP/", 1000+(i+1)%nHints)}, Providers: []string{fmt.Sprint("CustomPresence:", 1000+i)}}
		st, _ := tb.Put(hn)
		h.Append(change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
		keys = append(keys, hn.Key())
	}
	publish := func(states []hints.State) {
		items := make([]change.Change, len(states))
		for i, st := range states {
			items[i] = change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st}
		}
		h.Append(items...)
	}

	type view struct {
		states  map[string]hints.State
		lastSeq uint64
		pos     Position
		filter  Filter
	}
	apply := func(t *testing.T, v *view, snap Snapshot, evs []*Event) {
		if !snap.Resumed && snap.Epoch != "" {
			v.states = map[string]hints.State{}
			for _, ev := range snap.Items {
				v.states[ev.Key] = hintOf(ev)
			}
			v.lastSeq = snap.Seq
		}
		for _, ev := range evs {
			if ev.Seq <= v.lastSeq {
				t.Errorf("sequence went back: %d after %d", ev.Seq, v.lastSeq)
			}
			v.lastSeq = ev.Seq
			v.states[ev.Key] = hintOf(ev)
		}
		v.pos = Position{Epoch: h.Epoch(), Seq: v.lastSeq}
	}

	const nSubs = 30
	var wg sync.WaitGroup
	views := make([]*view, nSubs)
	stop := make(chan struct{})
	for i := range nSubs {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		f := Filter{All: i%3 == 0}
		if !f.All {
			for _, k := range keys {
				if rng.IntN(3) == 0 {
					f.IDs = append(f.IDs, change.ID{Kind: hints.KindHint, Key: k})
				}
			}
		}
		v := &view{filter: f}
		views[i] = v
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub, snap := h.Subscribe(f, nil)
			apply(t, v, snap, nil)
			for {
				select {
				case <-stop:
					sub.Close()
					return
				default:
				}
				switch r := rng.IntN(10); {
				case r < 6: // a fast consumer step
					evs, err := sub.Next(done)
					if err == nil {
						apply(t, v, Snapshot{Resumed: true}, evs)
						continue
					}
					var dropped *DroppedError
					if errors.As(err, &dropped) { // come back, resuming
						sub, snap = h.Subscribe(f, &v.pos)
						apply(t, v, snap, nil)
					}
				case r < 8: // go away and come back
					sub.Close()
					sub, snap = h.Subscribe(f, &v.pos)
					apply(t, v, snap, nil)
				default: // slow
					time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
				}
				runtime.Gosched()
			}
		}()
	}
	var pub sync.WaitGroup
	for g := range 4 {
		pub.Add(1)
		go func() {
			defer pub.Done()
			rng := rand.New(rand.NewPCG(uint64(100+g), 9))
			for range 3000 {
				n := rng.IntN(nHints)
				if rng.IntN(4) == 0 {
					publish(tb.SetPresence(fmt.Sprint("CustomPresence:", 1000+n), hints.ProviderPresence{Value: presence.Value{State: presence.States()[rng.IntN(7)]}}))
				} else {
					publish(tb.SetDevice(fmt.Sprint("PJSIP/", 1000+n), hints.DeviceStates()[rng.IntN(9)]))
				}
				if rng.IntN(500) == 0 {
					clock.Lock()
					now = now.Add(time.Second) // lets hopeless subscribers be dropped
					clock.Unlock()
				}
			}
		}()
	}
	pub.Wait()
	close(stop)
	wg.Wait()

	// Every view, brought up to date by a last resume, equals the table.
	for i, v := range views {
		sub, snap := h.Subscribe(v.filter, &v.pos)
		apply(t, v, snap, drain(sub))
		sub.Close()
		want := map[string]hints.State{}
		for _, st := range tb.Snapshot() {
			if v.filter.Compile().Match(hints.KindHint, st.Key()) {
				want[st.Key()] = *st
			}
		}
		if len(v.states) != len(want) {
			t.Fatalf("subscriber %d sees %d hints, want %d", i, len(v.states), len(want))
		}
		for k, w := range want {
			g := v.states[k]
			if g.Extension != w.Extension || g.Device != w.Device || !g.Presence.Same(w.Presence) {
				t.Fatalf("subscriber %d: %s is %v/%v/%v, table has %v/%v/%v", i, k, g.Extension, g.Device, g.Presence.State, w.Extension, w.Device, w.Presence.State)
			}
		}
	}
	if h.Subscribers() != 0 {
		t.Fatalf("%d subscribers left", h.Subscribers())
	}
	testenv.Eventually(t, "the subscribers' goroutines gone", func() bool { return runtime.NumGoroutine() <= before },
		func() string { return fmt.Sprintf("%d goroutines, %d before", runtime.NumGoroutine(), before) })
}

// AfterDrop runs once on a drop, never on Close, and stop prevents it;
// Done and Err tell how a subscription ended.
func TestAfterDropAndDone(t *testing.T) {
	now := time.Unix(1000, 0)
	h := New(Config{Queue: 1, HopelessAfter: time.Minute, Now: func() time.Time { return now }})
	dropped, closed, stopped := make(chan struct{}, 2), make(chan struct{}, 1), make(chan struct{}, 1)
	a, _ := h.Subscribe(Filter{All: true}, nil)
	a.AfterDrop(func() { dropped <- struct{}{} })
	b, _ := h.Subscribe(Filter{All: true}, nil)
	b.AfterDrop(func() { closed <- struct{}{} })
	c, _ := h.Subscribe(Filter{All: true}, nil)
	if !c.AfterDrop(func() { stopped <- struct{}{} })() {
		t.Fatal("stop did not report preventing f")
	}
	b.Close()
	if b.Err() != ErrClosed {
		t.Fatalf("closed Err %v", b.Err())
	}
	select {
	case <-b.Done():
	default:
		t.Fatal("Done not closed by Close")
	}
	if a.Err() != nil {
		t.Fatal("running subscription has an Err")
	}
	for i := range 3 {
		h.Append(hintItem(fmt.Sprint("k", i), hints.ExtIdle, uint64(i+1)))
	}
	now = now.Add(2 * time.Minute)
	h.Append(hintItem("k9", hints.ExtIdle, 10))
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterDrop not run on a drop")
	}
	<-a.Done()
	var de *DroppedError
	if !errors.As(a.Err(), &de) {
		t.Fatalf("dropped Err %v", a.Err())
	}
	// Registered after the drop: runs at once.
	a.AfterDrop(func() { dropped <- struct{}{} })
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterDrop after the drop not run")
	}
	time.Sleep(10 * time.Millisecond)
	if len(closed)+len(stopped) != 0 {
		t.Fatal("AfterDrop ran for a closed or stopped subscription")
	}
}

// Memo builds once per slot, whoever asks, and gives everyone the same bytes.
func TestMemo(t *testing.T) {
	ev := &Event{Seq: 7}
	var builds sync.WaitGroup
	n := 0
	var mu sync.Mutex
	build := func(e *Event) []byte {
		mu.Lock()
		n++
		mu.Unlock()
		return []byte(fmt.Sprint("seq ", e.Seq))
	}
	for range 50 {
		builds.Add(1)
		go func() {
			defer builds.Done()
			if got := string(ev.Memo(1, build)); got != "seq 7" {
				t.Errorf("memo %q", got)
			}
		}()
	}
	builds.Wait()
	if string(ev.Memo(1, nil)) != "seq 7" {
		t.Fatal("memo not kept")
	}
	if string(ev.Memo(2, func(*Event) []byte { return []byte("other") })) != "other" {
		t.Fatal("slots share")
	}
	if n < 1 {
		t.Fatal("never built")
	}
}

// Hub.Follow gives a follower the snapshot, then the changes; a follower
// the hub drops is subscribed again from a fresh snapshot, and Follow
// ends with its context.
func TestFollowResubscribes(t *testing.T) {
	var clock sync.Mutex
	now := time.Unix(1000, 0)
	h := New(Config{Queue: 1, HopelessAfter: time.Minute, Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	h.Append(hintItem("a", hints.ExtIdle, 1))
	snaps := make(chan Snapshot, 4)
	release, busy := make(chan struct{}), make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		ended <- h.Follow(ctx, Filter{All: true}, func(s Snapshot) { snaps <- s }, func([]*Event) {
			select {
			case busy <- struct{}{}:
			default:
			}
			<-release
		})
	}()
	if s := <-snaps; len(s.Items) != 1 {
		t.Fatalf("first snapshot: %+v", s.Items)
	}
	// The follower is stuck in its first batch; the hub drops it when its
	// queue stays over the limit past HopelessAfter.
	h.Append(hintItem("b", hints.ExtIdle, 2))
	<-busy // the follower holds its first batch (b alone): what follows queues up
	for i := range 3 {
		h.Append(hintItem(fmt.Sprint("c", i), hints.ExtIdle, uint64(3+i)))
	}
	clock.Lock()
	now = now.Add(2 * time.Minute)
	clock.Unlock()
	h.Append(hintItem("d", hints.ExtIdle, 10))
	close(release)
	select {
	case s := <-snaps:
		if len(s.Items) != 6 {
			t.Fatalf("second snapshot: %d items", len(s.Items))
		}
	case <-time.After(time.Minute):
		t.Fatal("not subscribed again after the drop")
	}
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow ended with %v", err)
	}
}
