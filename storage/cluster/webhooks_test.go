package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/views/webhook"
)

var (
	_ webhook.Store  = (*Webhooks)(nil)
	_ webhook.Shared = (*Webhooks)(nil)
)

// receiver records the ids of the events a webhook target gets.
type receiver struct {
	mu  sync.Mutex
	ids []uint64
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id, err := strconv.ParseUint(req.Header.Get(webhook.EventIDHeader), 10, 64)
	if err == nil {
		r.mu.Lock()
		r.ids = append(r.ids, id)
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// openWebhooks opens the webhooks' buckets through c, once the cluster
// lets it (a cluster just formed may refuse for a moment).
func openWebhooks(t *testing.T, ctx context.Context, c *Conn, node string, log *Log) *Webhooks {
	t.Helper()
	for {
		w, err := c.OpenWebhooks(ctx, 3, node, log)
		if err == nil {
			return w
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A webhook created at one node is known to every node and delivered by
// one of them, in order; when that node dies (its NATS connection gone,
// its lease not given back) another takes it over from the stored cursor:
// every change is delivered, in order, at least once.
func TestWebhookTakenOver(t *testing.T) {
	testenv.Long(t)
	_, conns := startCluster(t, 3)
	hubs, logs := openHubs(t, conns, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	mgrs := make([]*webhook.Manager, 3)
	stores := make([]*Webhooks, 3)
	for i, c := range conns {
		stores[i] = openWebhooks(t, ctx, c, fmt.Sprintf("n%d", i+1), logs[i])
		mgrs[i] = webhook.New(webhook.Config{Hub: hubs[i], Store: stores[i], Shared: stores[i], Node: fmt.Sprintf("n%d", i+1),
			RetryMin: 50 * time.Millisecond, RetryMax: time.Second, Log: zerolog.Nop()})
		if err := mgrs[i].Open(ctx); err != nil {
			t.Fatal(err)
		}
	}
	closed := make([]bool, 3)
	defer func() {
		for i, m := range mgrs {
			if !closed[i] {
				_ = m.Close()
			}
		}
	}()
	info, _, err := mgrs[0].Create(ctx, webhook.Spec{URL: srv.URL + "/hook", All: true})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "every node knows the webhook", func() bool {
		for _, m := range mgrs {
			if _, ok := m.Get(info.ID); !ok {
				return false
			}
		}
		return true
	})
	publish := func(h int, from, to int) []uint64 {
		for n := from; n < to; n++ {
			hubs[h].Append(presenceItem(fmt.Sprintf("7%03d", n), presence.Away, "x"))
		}
		if err := hubs[h].Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	publish(1, 0, 50)
	testenv.Eventually(t, "50 events delivered", func() bool { return len(rcv.got()) >= 50 })
	holder := ""
	testenv.Eventually(t, "a node says it delivers", func() bool {
		in, _ := mgrs[2].Get(info.ID)
		holder = in.Status.Node
		return holder != ""
	})
	dead := int(holder[1] - '1')
	// The delivering node dies: no graceful stop, the lease stays until
	// it expires.
	conns[dead].Close()
	_ = mgrs[dead].Close()
	closed[dead] = true
	alive := (dead + 1) % 3
	publish(alive, 50, 100)
	testenv.Eventually(t, "100 events delivered after the take-over", func() bool {
		ids := rcv.got()
		slices.Sort(ids)
		return len(slices.Compact(ids)) >= 100
	})
	in, _ := mgrs[alive].Get(info.ID)
	if in.Status.Node == "" || in.Status.Node == holder {
		t.Fatalf("delivered by %q after %q died", in.Status.Node, holder)
	}
	// In order: each term of a node delivers in increasing order; a
	// take-over may repeat what came after the stored cursor, never skip.
	ids := rcv.got()
	seen := map[uint64]bool{}
	for i, id := range ids {
		if i > 0 && id <= ids[i-1] && !seen[id] {
			t.Fatalf("event %d after %d, not a repeat: %v", id, ids[i-1], ids)
		}
		seen[id] = true
	}
	uniq := slices.Clone(ids)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	for i := 1; i < len(uniq); i++ {
		if uniq[i] != uniq[i-1]+1 {
			t.Fatalf("a gap: %d then %d", uniq[i-1], uniq[i])
		}
	}
	// Deleted at a node: every node forgets it.
	if err := mgrs[alive].Delete(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "every live node forgot it", func() bool {
		for i, m := range mgrs {
			if _, ok := m.Get(info.ID); ok && !closed[i] {
				return false
			}
		}
		return true
	})
}

// A webhook far behind a log that then goes quiet catches up: each read
// takes all its consumer had pending, and nothing waits for a next change.
func TestWebhookCatchesUpOnAQuietLog(t *testing.T) {
	testenv.Long(t)
	_, conns := startCluster(t, 3)
	hubs, logs := openHubs(t, conns, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	store := openWebhooks(t, ctx, conns[0], "n1", logs[0])
	m := webhook.New(webhook.Config{Hub: hubs[0], Store: store, Shared: store, Node: "n1", Log: zerolog.Nop()})
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.Create(ctx, webhook.Spec{URL: srv.URL + "/hook", All: true}); err != nil {
		t.Fatal(err)
	}
	const n = 1500
	for i := range n {
		hubs[1].Append(presenceItem(fmt.Sprintf("9%04d", i), presence.Away, "q"))
	}
	if err := hubs[1].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, fmt.Sprintf("%d events delivered after the log went quiet", n), func() bool { return len(rcv.got()) >= n })
}
