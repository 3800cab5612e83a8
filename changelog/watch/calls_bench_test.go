package watch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/storage/store"
)

// BenchmarkCallsToWatchers: 500 concurrent calls (each ringing, answered,
// hung up: three changes of its device) delivered to 1,000 watchers of
// everything, against 500 hints changing three times each in the same
// run. The hub logs to a real bbolt store; each watcher takes its events
// as a transport does (Next, then the event's JSON frame, built once per
// event and shared). Figures: the time from Publish until the last
// watcher has the event, p50 and p99 over the 1,500 changes.
func BenchmarkCallsToWatchers(b *testing.B) {
	for _, kind := range []string{"hint", "calls"} {
		b.Run(kind, func(b *testing.B) {
			var p50s, p99s []float64
			for range b.N {
				p50, p99 := deliveryRun(b, kind, 500, 1000)
				p50s, p99s = append(p50s, p50), append(p99s, p99)
			}
			slices.Sort(p50s)
			slices.Sort(p99s)
			b.ReportMetric(p50s[len(p50s)/2], "p50-ms")
			b.ReportMetric(p99s[len(p99s)/2], "p99-ms")
		})
	}
}

func deliveryRun(b *testing.B, kind string, n, watchers int) (p50, p99 float64) {
	b.Helper()
	db, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	h := watch.New(watch.Config{Log: db, Queue: 8192})
	if err := h.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	changes := 3 * n
	sent := make([]time.Time, changes+1) // by sequence number
	var mu sync.Mutex
	last := make([]time.Time, changes+1)
	got := make([]int, changes+1)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range watchers {
		s, _ := h.Subscribe(watch.Filter{All: true}, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			seen := 0
			for seen < changes {
				evs, err := s.Next(ctx)
				if err != nil {
					return
				}
				now := time.Now()
				for _, ev := range evs {
					_ = ev.Memo(0, func(e *watch.Event) []byte {
						data, _ := json.Marshal(e.Value)
						return data
					})
				}
				mu.Lock()
				for _, ev := range evs {
					if ev.Seq <= uint64(changes) {
						got[ev.Seq]++
						if now.After(last[ev.Seq]) {
							last[ev.Seq] = now
						}
					}
				}
				mu.Unlock()
				seen += len(evs)
			}
		}()
	}
	at := time.Unix(1796000000, 0)
	states := []calls.State{calls.Ringing, calls.Established}
	exts := []hints.ExtensionState{hints.ExtRinging, hints.ExtInUse, hints.ExtIdle}
	for step := range 3 {
		for i := range n {
			var it change.Change
			dev := fmt.Sprintf("PJSIP/%d", 10000+i)
			if kind == "calls" {
				d := calls.DeviceCalls{Device: dev}
				if step < 2 {
					d.Calls = []calls.Call{{Channel: dev + "-0001", Device: dev, UniqueID: fmt.Sprint(i), LinkedID: fmt.Sprint(i),
						Direction: calls.Incoming, State: states[step], Number: "0427466347", Name: "Caller", Since: at, Started: at,
						Vars: map[string]string{"USR_ticket": "42"}}}
				}
				it = change.Change{Kind: calls.KindCalls, Key: d.Key(), Value: d}
			} else {
				st := hints.State{Hint: hints.Hint{Context: "internal", Exten: fmt.Sprint(10000 + i), Devices: []string{dev}, Providers: []string{"CustomPresence:" + fmt.Sprint(10000+i)}},
					Extension: exts[step]}
				it = change.Change{Kind: hints.KindHint, Key: st.Key(), Value: st}
			}
			seq := step*n + i + 1
			sent[seq] = time.Now()
			h.Append(it)
			if i%50 == 49 {
				time.Sleep(time.Millisecond) // 500 changes in ~10 ms: a busy PBX's burst, not a flood
			}
		}
	}
	wg.Wait()
	var lat []float64
	for seq := 1; seq <= changes; seq++ {
		if got[seq] != watchers {
			b.Fatalf("change %d reached %d of %d watchers", seq, got[seq], watchers)
		}
		lat = append(lat, float64(last[seq].Sub(sent[seq]))/float64(time.Millisecond))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}
