package watch

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/hints"
)

// benchSetup: 10,000 hints in a table, 1,000 subscribers to 10 hints each,
// and a publish function from table changes to the hub.
func benchSetup(b *testing.B, all int) (*hints.Table, []string, []*Sub, func([]hints.State)) {
	tb := hints.NewTable()
	h := New(Config{})
	devs := make([]string, 10000)
	keys := make([]string, 10000)
	for i := range devs {
		n := fmt.Sprint(10000 + i)
		devs[i] = "PJSIP/" + n
		st, _ := tb.Put(hints.Hint{Context: "internal", Exten: n, Devices: []string{devs[i]}, Providers: []string{"CustomPresence:" + n}})
		keys[i] = st.Key()
		h.Append(change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var subs []*Sub
	for i := range 1000 {
		f := Filter{All: i < all}
		for range 10 {
			f.IDs = append(f.IDs, change.ID{Kind: hints.KindHint, Key: keys[rng.IntN(len(keys))]})
		}
		s, _ := h.Subscribe(f, nil)
		subs = append(subs, s)
	}
	items := make([]change.Change, 0, 4)
	publish := func(states []hints.State) {
		items = items[:0]
		for _, st := range states {
			items = append(items, change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
		}
		h.Append(items...)
	}
	return tb, devs, subs, publish
}

// BenchmarkChange: device-state changes through the table and the hub to
// 1,000 subscribers (10 hints each; in /all-10, 10 of them watch
// everything), consumers draining every 1,000 changes.
func BenchmarkChange(b *testing.B) {
	for _, all := range []int{0, 10} {
		b.Run(fmt.Sprintf("all-%d", all), func(b *testing.B) {
			tb, devs, subs, publish := benchSetup(b, all)
			states := [2]hints.DeviceState{hints.InUse, hints.NotInUse}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				publish(tb.SetDevice(devs[i%len(devs)], states[(i/len(devs))%2]))
				if i%1000 == 999 {
					for _, s := range subs {
						drain(s)
					}
				}
			}
		})
	}
}

// BenchmarkChangeTableOnly is the baseline: the same changes into the table
// alone.
func BenchmarkChangeTableOnly(b *testing.B) {
	tb, devs, _, _ := benchSetup(b, 0)
	states := [2]hints.DeviceState{hints.InUse, hints.NotInUse}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tb.SetDevice(devs[i%len(devs)], states[(i/len(devs))%2])
	}
}

// BenchmarkSnapshot: a new subscriber to everything gets 10,000 hints.
func BenchmarkSnapshot(b *testing.B) {
	_, _, subs, _ := benchSetup(b, 0)
	h := subs[0].hub
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, snap := h.Subscribe(Filter{All: true}, nil)
		if len(snap.Items) != 10000 {
			b.Fatal(len(snap.Items))
		}
		s.Close()
	}
}
