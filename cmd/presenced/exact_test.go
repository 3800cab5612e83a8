package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// exactEnv is presenced in front of one emulated Asterisk, seen through a
// fake AMI and a fake ARI, with Asterisk's own history of every presence
// write and a watcher of everything presenced publishes.
type exactEnv struct {
	t   *testing.T
	ast *astemu.Asterisk
	ami *amitest.Server
	ari *aritest.Server
	m   *Main

	mu      sync.Mutex
	history map[string][]string // provider -> every value Asterisk took, in order
	events  []*watch.Event
	sub     *watch.Sub
	done    chan struct{}
}

func pv(state, sub, msg string) string { return state + "|" + sub + "|" + msg }

var exactUsers = []string{"1001", "1002", "1003"}

func newExactEnv(t *testing.T, withARI bool) *exactEnv {
	t.Helper()
	e := &exactEnv{t: t, history: map[string][]string{}, done: make(chan struct{})}
	amiSrv, err := amitest.New("presenced", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(amiSrv.Close)
	e.ami = amiSrv
	var extra []string
	if withARI {
		ariSrv := fakeARI(t)
		e.ari = ariSrv
		e.ast = ariSrv.Ast // one Asterisk behind AGI, ARI and AMI
		for _, u := range exactUsers {
			ariSrv.SetDevice("PJSIP/"+u, "NOT_INUSE")
		}
		extra = append(extra, "PRESENCED_ARI_URL="+ariSrv.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari")
	} else {
		e.ast = astemu.New()
	}
	amiSrv.Attach(e.ast)
	var hs []amitest.Hint
	for _, u := range exactUsers {
		hs = append(hs, amitest.Hint{Exten: u, Context: "internal", App: "PJSIP/" + u + ",CustomPresence:" + u, Status: 0, StatusText: "Idle"},
			amitest.Hint{Exten: "19" + u[2:], Context: "internal", App: "PJSIP/" + u + "&" + presence.DNDDevice(u) + ",CustomPresence:" + u, Status: 0, StatusText: "Idle"})
	}
	amiSrv.SetHints(hs...)
	e.ast.Watch(func(c astemu.PresenceChange) {
		e.mu.Lock()
		p := hints.ProviderKey(c.Provider)
		e.history[p] = append(e.history[p], pv(c.State, c.Subtype, c.Message))
		e.mu.Unlock()
	})
	e.m = openWithAMI(t, amiSrv, extra...)
	t.Cleanup(func() { e.m.Close() })
	testenv.Eventually(t, "AMI and ARI up, every hint read", func() bool {
		amiUp, _ := e.m.ami.Status()
		ariUp := true
		if withARI {
			ariUp, _ = e.m.ari.Status()
		}
		return amiUp && ariUp && e.m.hints.Len() == 2*len(exactUsers)
	})
	sub, snap := e.m.hub.Subscribe(watch.Filter{All: true}, nil)
	e.sub = sub
	e.events = append(e.events, snap.Items...)
	go func() {
		defer close(e.done)
		for {
			evs, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			e.mu.Lock()
			e.events = append(e.events, evs...)
			e.mu.Unlock()
		}
	}()
	t.Cleanup(func() { sub.Close(); <-e.done })
	return e
}

// settle waits until every echo Asterisk owes has been sent and read: a
// marker written after them, whose AMI event comes after theirs, is seen.
func (e *exactEnv) settle() {
	e.t.Helper()
	e.ami.Settle()
	marker := fmt.Sprintf("m%d", time.Now().UnixNano())
	e.ast.SetPresence("CustomPresence:marker", "away", "", marker)
	testenv.Eventually(e.t, "the marker through the hub", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		n := len(e.events)
		return n > 0 && e.events[n-1].Kind == hints.KindPresence && presOf(e.events[n-1]).Value.Message == marker
	})
}

// presenceEvents returns what the watcher saw of a provider.
func (e *exactEnv) presenceEvents(provider string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.events {
		if ev.Kind == hints.KindPresence && ev.Key == provider {
			v := presOf(ev).Value
			out = append(out, pv(v.State.String(), v.Subtype, v.Message))
		}
	}
	return out
}

func (e *exactEnv) hintEvents(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Kind == hints.KindHint && ev.Key == key {
			n++
		}
	}
	return n
}

// timersEnded waits until no user's presence is timed any more: every
// timer set has ended (and been written, or is pending).
func (e *exactEnv) timersEnded(users ...string) {
	e.t.Helper()
	testenv.Eventually(e.t, "the timed presences ending", func() bool {
		for _, u := range users {
			if v, _, _ := e.m.svc.Lookup(u); !v.Expires.IsZero() {
				return false
			}
		}
		return true
	})
}

func (e *exactEnv) hook(script, user string, args ...string) map[string]string {
	e.t.Helper()
	return hook(e.t, e.m, e.ast, script, user, append([]string{""}, args...)...).Vars()
}

// One hook: exactly one presence event, and one event for each hint that
// shows the provider, whatever the timing of Asterisk's AMI echo (sent at
// once, late, or after the next hook), and nothing more when the same
// presence is set again (Asterisk echoes that too).
func TestOneHookOneEventWhateverTheEcho(t *testing.T) {
	for _, delay := range []time.Duration{0, 5 * time.Millisecond, 60 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			e := newExactEnv(t, false)
			e.ami.Delay = func() time.Duration { return delay }
			e.settle()
			base := len(e.presenceEvents("CustomPresence:1001"))
			baseHint, baseDND := e.hintEvents("1001@internal"), e.hintEvents("1901@internal")
			if v := e.hook("presence/set", "1001", "away", "", `Lunch, "back" at 2?`); v["PRESENCED_RESULT"] != "OK" {
				t.Fatal(v)
			}
			e.settle()
			got := e.presenceEvents("CustomPresence:1001")[base:]
			if len(got) != 1 || got[0] != pv("away", "", `Lunch, "back" at 2?`) {
				t.Fatalf("presence events %q", got)
			}
			if n, m := e.hintEvents("1001@internal")-baseHint, e.hintEvents("1901@internal")-baseDND; n != 1 || m != 1 {
				t.Fatalf("hint events %d and %d, want 1 each", n, m)
			}
			// Two hooks in a row, the first's echo arriving after the second:
			// two events, the view never goes back.
			e.hook("presence/set", "1001", "dnd")
			e.hook("presence/set", "1001", "xa")
			e.hook("presence/set", "1001", "xa") // the same again: nothing
			e.settle()
			got = e.presenceEvents("CustomPresence:1001")[base:]
			if want := []string{pv("away", "", `Lunch, "back" at 2?`), pv("dnd", "", ""), pv("xa", "", "")}; !slices.Equal(got, want) {
				t.Fatalf("presence events %q, want %q", got, want)
			}
		})
	}
}

// followHistory returns -1 when seen follows history in order (skipping
// is allowed: a watcher need not see every value, but never an older one
// after a newer), else the index of the first value of seen that breaks it.
func followHistory(seen, history []string) int {
	i := 0
	for k, s := range seen {
		for i < len(history) && history[i] != s {
			i++
		}
		if i == len(history) {
			return k
		}
	}
	return -1
}

// The randomized must-hold: rounds of concurrent hooks (FastAGI), REST
// writes, changes made elsewhere (the CLI) and timers, with Asterisk's
// echoes delayed at random. The watcher ends with what Asterisk holds,
// never sees a value Asterisk had already left replace a newer one (what it
// sees of a provider follows Asterisk's own history), never sees an id
// twice; each user's DND device is BUSY exactly while its presence is dnd.
func TestRandomInterleavings(t *testing.T) {
	e := newExactEnv(t, true)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var rmu sync.Mutex
	intn := func(n int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(n) }
	e.ami.Delay = func() time.Duration { return time.Duration(intn(3000)) * time.Microsecond }
	states := []string{"available", "away", "xa", "chat", "dnd", "unavailable"}
	texts := []string{"", "Lunch", `say "hi", it's ok?`, "tab\there", "line\nbreak", `C:\dir\n`, "Büro 日本"}
	base := "http://" + e.m.http.Addr().String()
	var ops atomic.Int64
	op := func(user string, timed bool) {
		ops.Add(1)
		switch k := intn(8); {
		case timed:
			e.hook("presence/set", user, "away", "", "timed", "1s")
		case k == 0:
			e.hook("dnd/on", user, texts[intn(len(texts))])
		case k == 1:
			e.hook("dnd/off", user)
		case k == 2:
			e.hook("presence/restore", user)
		case k == 3:
			e.hook("presence/toggle", user, states[intn(len(states))])
		case k == 4:
			body := fmt.Sprintf(`{"state":%q,"message":%q}`, states[intn(len(states))], texts[intn(len(texts))])
			req, _ := http.NewRequest("PUT", base+"/v1/presence/"+user, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		case k == 5:
			e.ast.SetPresence("CustomPresence:"+user, states[intn(len(states))], "", "elsewhere "+texts[intn(len(texts))])
		default:
			e.hook("presence/set", user, states[intn(len(states))], texts[intn(len(texts))], texts[intn(len(texts))])
		}
	}
	const rounds = 250
	for r := range rounds {
		var wg sync.WaitGroup
		timed := r%100 == 99
		for range 4 {
			user := exactUsers[intn(len(exactUsers))]
			wg.Go(func() { op(user, timed) })
		}
		wg.Wait()
		if timed {
			e.timersEnded(exactUsers...)
		}
	}
	time.Sleep(20 * time.Millisecond) // a timer's write, if one is under way
	e.settle()
	t.Logf("%d operations", ops.Load())

	e.mu.Lock()
	seqs := map[uint64]bool{}
	var last uint64
	for _, ev := range e.events {
		if seqs[ev.Seq] || ev.Seq < last {
			e.mu.Unlock()
			t.Fatalf("id %d seen twice or out of order", ev.Seq)
		}
		seqs[ev.Seq], last = true, ev.Seq
	}
	e.mu.Unlock()
	for _, u := range exactUsers {
		p := "CustomPresence:" + u
		st, sub, msg, _ := e.ast.Presence(p)
		seen := e.presenceEvents(p)
		if len(seen) == 0 || seen[len(seen)-1] != pv(st, sub, msg) {
			t.Errorf("%s: the watcher ends with %q, Asterisk holds %q", p, seen[len(seen)-1:], pv(st, sub, msg))
		}
		e.mu.Lock()
		hist := append([]string{pv("not_set", "", "")}, e.history[p]...)
		e.mu.Unlock()
		if k := followHistory(seen, hist); k >= 0 {
			from := max(0, k-4)
			// where the prefix ended in the history
			i := 0
			for _, v := range seen[:k] {
				for i < len(hist) && hist[i] != v {
					i++
				}
			}
			t.Logf("history around the last match (%d): %q", i, hist[max(0, i-6):min(len(hist), i+6)])
			t.Errorf("%s: the watcher's event %d of %d, %q, does not follow Asterisk's history; seen before it: %q; history: %d values, the last ones %q",
				p, k, len(seen), seen[k], seen[from:k], len(hist), hist[max(0, len(hist)-8):])
		}
		if hs, ok := e.m.hints.Get("internal", u); !ok || pv(hs.Presence.State.String(), hs.Presence.Subtype, hs.Presence.Message) != pv(st, sub, msg) {
			t.Errorf("hint %s shows %+v, Asterisk holds %q", u, hs.Presence, pv(st, sub, msg))
		}
	}
	// The DND device follows the presence, whatever path moved it.
	wrong := func() string {
		w := ""
		for _, u := range exactUsers {
			st, _, _, _ := e.ast.Presence("CustomPresence:" + u)
			want := map[bool]string{true: "BUSY", false: "INVALID"}[st == "dnd"]
			if got := e.ari.Device(presence.DNDDevice(u)); got != want && !(got == "UNKNOWN" && want == "INVALID") {
				w += fmt.Sprintf(" %s: presence %s, DND device %s;", u, st, got)
			}
		}
		return w
	}
	testenv.Eventually(t, "every DND device following its presence", func() bool { return wrong() == "" }, wrong)
}
