package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
)

// fakeAsterisk holds PRESENCE_STATE values, as one Asterisk both nodes
// write to (one site).
type fakeAsterisk struct {
	mu   sync.Mutex
	vals map[string]presence.Value
}

func (a *fakeAsterisk) WritePresence(_ context.Context, provider, encoded string) error {
	v, err := presence.Decode(encoded)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.vals[provider] = v
	a.mu.Unlock()
	return nil
}

func (a *fakeAsterisk) ReadPresence(_ context.Context, provider string) (presence.Value, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.vals[provider], nil
}

// Two nodes set one user 1,000 times at once: every operation holds the
// user's lease in the cluster and starts from the record the cluster last
// saved, so the restore memory is some serial order of them: the last
// values of each node in its own order, nothing lost, nothing twice; and
// restoring walks back through it.
func TestTwoNodesSetOneUser(t *testing.T) {
	testenv.Long(t)
	_, conns := startCluster(t, 3)
	rs := openRecords(t, conns, 3)
	ast := &fakeAsterisk{vals: map[string]presence.Value{}}
	const maxHistory = 1001
	svcs := make([]*presence.Service, 2)
	for i := range svcs {
		s, err := presence.NewService(presence.Config{Store: rs[i], Shared: rs[i], Background: ast, MaxHistory: maxHistory})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		svcs[i] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const each = 500 // 1,000 changes: the restore memory (1,001 with the empty presence before them) keeps them all
	var wg sync.WaitGroup
	for w, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				st := presence.Away
				if i%2 == 1 {
					st = presence.DND // every set is a change
				}
				if _, err := s.Set(ctx, nil, "1001", presence.Value{State: st, Message: fmt.Sprintf("%d-%d", w, i)}); err != nil {
					t.Errorf("node %d set %d: %v", w+1, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rec, ok, err := rs[2].LoadRecord(ctx, "1001")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var all []presence.Value
	for _, v := range append(rec.History, rec.Current) {
		if v.Message != "" { // the empty presence before them
			all = append(all, v)
		}
	}
	if len(all) != 2*each {
		t.Fatalf("%d values remembered, want %d", len(all), 2*each)
	}
	next := []int{0, 0}
	for _, v := range all {
		var w, i int
		if _, err := fmt.Sscanf(v.Message, "%d-%d", &w, &i); err != nil || i != next[w] {
			t.Fatalf("value %q out of order (node %d expected %d)", v.Message, w+1, next[w])
		}
		next[w]++
	}
	// Asterisk holds what the cluster says is current, and a restore on
	// the other node goes back to the value before it.
	if got, _ := ast.ReadPresence(ctx, "CustomPresence:1001"); got.Message != rec.Current.Message {
		t.Fatalf("Asterisk holds %q, the record %q", got.Message, rec.Current.Message)
	}
	prev := all[len(all)-2]
	if got, err := svcs[0].Restore(ctx, nil, "1001"); err != nil || got.Message != prev.Message {
		t.Fatalf("restore: %+v %v, want %q", got, err, prev.Message)
	}
}
