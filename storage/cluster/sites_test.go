package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/rs/zerolog"
)

// siteAsterisk is a fakeAsterisk that counts the writes it takes.
type siteAsterisk struct {
	fakeAsterisk
	writes atomic.Int64
}

func newSiteAsterisk() *siteAsterisk {
	return &siteAsterisk{fakeAsterisk: fakeAsterisk{vals: map[string]presence.Value{}}}
}

func (a *siteAsterisk) WritePresence(ctx context.Context, provider, encoded string) error {
	a.writes.Add(1)
	return a.fakeAsterisk.WritePresence(ctx, provider, encoded)
}

// set is a change made in that Asterisk outside presenced (a phone).
func (a *siteAsterisk) set(provider string, v presence.Value) {
	a.mu.Lock()
	a.vals[provider] = v
	a.mu.Unlock()
}

func (a *siteAsterisk) get(provider string) presence.Value {
	v, _ := a.ReadPresence(context.Background(), provider)
	return v
}

// Presence is global, each site's Asterisk holds it: a set at Paris is
// written into Lyon's Asterisk; a phone's change in Lyon's Asterisk (seen
// as AMI reports it) becomes the cluster's and reaches Paris; nothing
// echoes back and forth once they agree; two nodes of one site do not
// both write; and a timed presence ends in both Asterisks when the node
// that set it is gone.
func TestSitesShareOnePresence(t *testing.T) {
	testenv.Long(t)
	_, conns := startCluster(t, 3)
	rs := openRecords(t, conns, 3)
	paris, lyon := newSiteAsterisk(), newSiteAsterisk()
	type node struct {
		svc    *presence.Service
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(i int, site string, ast *siteAsterisk) *node {
		svc, err := presence.NewService(presence.Config{Store: rs[i], Shared: rs[i], Background: ast, Site: site,
			Log: zerolog.New(zerolog.NewTestWriter(t)).With().Int("node", i+1).Logger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		n := &node{svc: svc, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(n.done)
			_ = rs[i].Watch(ctx, svc.Changed)
		}()
		return n
	}
	stop := func(n *node) {
		n.cancel()
		<-n.done
		_ = n.svc.Close()
	}
	nodes := []*node{start(0, "paris", paris), start(1, "paris", paris), start(2, "lyon", lyon)}
	var stopOnce sync.Once
	t.Cleanup(func() {
		for i, n := range nodes {
			if i == 0 {
				stopOnce.Do(func() { stop(n) })
				continue
			}
			stop(n)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const p = "CustomPresence:1001"

	// A set at Paris reaches Lyon's Asterisk, written once.
	lunch := presence.Value{State: presence.Away, Message: "Lunch"}
	if _, err := nodes[0].svc.Set(ctx, nil, "1001", lunch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "Lyon holds Lunch", func() bool { return lyon.get(p).Same(lunch) })
	testenv.Eventually(t, "the record says both sites hold it", func() bool {
		rec, _, _ := rs[2].LoadRecord(ctx, "1001")
		return rec.Written["paris"].Same(lunch) && rec.Written["lyon"].Same(lunch)
	})
	// AMI's echoes: each Asterisk reports the write to its site's nodes.
	for _, n := range nodes {
		n.svc.Observe(p, lunch, false)
	}
	settle := func() (int64, int64) {
		time.Sleep(time.Second)
		return paris.writes.Load(), lyon.writes.Load()
	}
	pw, lw := settle()
	if pw != 1 || lw != 1 {
		t.Fatalf("writes: Paris %d, Lyon %d; want 1 each", pw, lw)
	}

	// A phone in Lyon sets dnd; the Lyon node sees it on AMI.
	dnd := presence.Value{State: presence.DND, Message: "Phone"}
	lyon.set(p, dnd)
	nodes[2].svc.Observe(p, dnd, false)
	testenv.Eventually(t, "Paris holds the Lyon phone's dnd", func() bool { return paris.get(p).Same(dnd) })
	// Both Paris nodes see Paris's AMI event of the write one of them made
	// (neither of them may take it for a change in Paris).
	nodes[0].svc.Observe(p, dnd, false)
	nodes[1].svc.Observe(p, dnd, false)
	pw2, lw2 := settle()
	if pw2 != pw+1 || lw2 != lw {
		t.Fatalf("writes after the phone: Paris %d (want %d), Lyon %d (want %d)", pw2, pw+1, lw2, lw)
	}
	rec, _, err := rs[0].LoadRecord(ctx, "1001")
	if err != nil || !rec.Current.Same(dnd) || !rec.Written["paris"].Same(dnd) || !rec.Written["lyon"].Same(dnd) {
		t.Fatalf("record after the phone: %+v %v", rec, err)
	}
	// A late event of the old value at a Paris node (seen before the
	// write) changes nothing: Paris's Asterisk holds dnd.
	nodes[1].svc.Observe(p, lunch, false)
	if pw3, lw3 := settle(); pw3 != pw2 || lw3 != lw2 || !lyon.get(p).Same(dnd) {
		t.Fatalf("a late event moved something: writes %d %d, Lyon %+v", pw3, lw3, lyon.get(p))
	}

	// A timed presence set at node 1, which then stops: the others end it
	// once, in both Asterisks.
	meeting := presence.Value{State: presence.XA, Message: "Meeting", Expires: time.Now().Add(3 * time.Second)}
	if _, err := nodes[0].svc.Set(ctx, nil, "1001", meeting); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "Lyon holds the meeting", func() bool { return lyon.get(p).Same(meeting) })
	for _, n := range nodes {
		n.svc.Observe(p, meeting, false)
	}
	stopOnce.Do(func() { stop(nodes[0]) })
	testenv.Eventually(t, "both back to dnd", func() bool { return paris.get(p).Same(dnd) && lyon.get(p).Same(dnd) })
	rec, _, err = rs[2].LoadRecord(ctx, "1001")
	if err != nil || !rec.Current.Same(dnd) {
		t.Fatalf("record after the timer: %+v %v", rec, err)
	}
	for _, v := range rec.History {
		if v.Same(meeting) {
			t.Fatalf("the ended meeting is in the restore memory: %+v", rec.History)
		}
	}
}
