package watch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/storage/store"
)

// items returns n presence changes of n providers, numbered from v.
func items(n int, v uint64) []change.Change {
	out := make([]change.Change, n)
	for i := range out {
		out[i] = change.Change{Kind: hints.KindPresence, Key: fmt.Sprintf("CustomPresence:%d", 10000+i), Version: v + uint64(i), Value: hints.ProviderPresence{Value: presence.Value{State: presence.Away, Message: fmt.Sprintf("change %d", v+uint64(i))}}}
	}
	return out
}

// BenchmarkLog: changes numbered by the hub and written to the change log
// in batches (of 1,000 or 4,096, the most the log writer appends in one
// commit), each batch waited for until it is on disk (bbolt), against the
// hub alone in memory (memory). One op is one batch.
func BenchmarkLog(b *testing.B) {
	for _, c := range []struct {
		durable bool
		batch   int
	}{{false, 1000}, {true, 1000}, {true, 4096}} {
		name := fmt.Sprintf("memory-%d", c.batch)
		if c.durable {
			name = fmt.Sprintf("bbolt-%d", c.batch)
		}
		durable, batch := c.durable, c.batch
		b.Run(name, func(b *testing.B) {
			cfg := watch.Config{}
			if durable {
				db, err := store.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				cfg.Log = db
			}
			h := watch.New(cfg)
			if err := h.Open(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			// Two sets of changes, published in turn: each publish changes
			// every provider (unnumbered items: Version 0 is never stale).
			sets := [2][]change.Change{items(batch, 0), items(batch, uint64(batch))}
			for i := range sets {
				for j := range sets[i] {
					sets[i][j].Version = 0
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.Append(sets[i%2]...)
				if durable {
					want := uint64((i + 1) * batch)
					for {
						head, grown := h.Durable()
						if head >= want {
							break
						}
						<-grown
					}
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "changes/s")
		})
	}
}

// BenchmarkResumeAfterRestart: a hub opened on a log of 20,000 changes
// (a restart), and a subscriber resuming 1,000 changes back: they come from
// the log. Against a fresh snapshot of the same hub (fresh).
func BenchmarkResumeAfterRestart(b *testing.B) {
	dir := b.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	h := watch.New(watch.Config{Log: db})
	if err := h.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	for v := uint64(1); v <= 20000; v += 1000 {
		h.Append(items(1000, v)...)
	}
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	h = watch.New(watch.Config{Log: db})
	if err := h.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	_, snap := h.Subscribe(watch.Filter{All: true}, nil)
	from := watch.Position{Epoch: snap.Epoch, Seq: snap.Seq - 1000}
	for _, resume := range []bool{true, false} {
		name := "resume-1000"
		if !resume {
			name = "fresh"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				var pos *watch.Position
				if resume {
					pos = &from
				}
				s, snap := h.Subscribe(watch.Filter{All: true}, pos)
				if resume != snap.Resumed {
					b.Fatalf("resumed %v", snap.Resumed)
				}
				s.Close()
			}
		})
	}
}

// BenchmarkSnapshot50k: a new subscriber to everything gets 50,000 hints
// from the hub; the hint table's own snapshot of them (table) beside it.
func BenchmarkSnapshot50k(b *testing.B) {
	tb := hints.NewTable()
	h := watch.New(watch.Config{})
	tb.Sink = h
	for i := range 50000 {
		n := fmt.Sprint(100000 + i)
		tb.Put(hints.Hint{Context: "internal", Exten: n, Devices: []string{"PJSIP/" + n}, Providers: []string{"CustomPresence:" + n}})
	}
	b.Run("hub", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			s, snap := h.Subscribe(watch.Filter{All: true}, nil)
			if len(snap.Items) != 50000 {
				b.Fatal(len(snap.Items))
			}
			s.Close()
		}
	})
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if len(tb.Snapshot()) != 50000 {
				b.Fatal("short")
			}
		}
	})
}
