package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/internal/testpki"
)

// testSecret is a cluster's shared secret.
func testSecret(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startCluster starts n embedded NATS nodes on loopback that route to each
// other, and returns them with a connection to each, JetStream ready.
func startCluster(t *testing.T, n int) ([]*Node, []*Conn) {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		routes[i] = testenv.FreeAddr(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := make([]*Node, n)
	conns := make([]*Conn, n)
	// Every test cluster is a secure one: a shared secret, and mutual
	// TLS between its servers.
	ca := testpki.NewCA(t, "cluster")
	secret := testSecret(t)
	for i := range nodes {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, r)
			}
		}
		cfg := NodeConfig{Name: fmt.Sprintf("n%d", i+1), Listen: "127.0.0.1:0", DataDir: t.TempDir(),
			Security: Security{Secret: secret, CAFile: ca.CertFile}}
		cfg.Security.CertFile, cfg.Security.KeyFile = ca.Issue(t, cfg.Name)
		if n > 1 {
			cfg.ClusterListen, cfg.Peers = routes[i], peers
		}
		node, err := StartNode(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = node
		t.Cleanup(func() { _ = node.Close() })
	}
	for i, node := range nodes {
		c, err := node.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if err := c.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return nodes, conns
}

// openRecords opens the bucket through every connection (the first
// creates it), retrying while a new cluster settles.
func openRecords(t *testing.T, conns []*Conn, replicas int) []*Records {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := make([]*Records, len(conns))
	for i, c := range conns {
		for {
			r, err := c.OpenRecords(ctx, replicas, fmt.Sprintf("n%d", i+1))
			if err == nil {
				out[i] = r
				break
			}
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out
}

// One node alone: records round-trip, Swap refuses a stale revision, and
// user names that keys cannot hold are kept whole.
func TestRecordsAlone(t *testing.T) {
	_, conns := startCluster(t, 1)
	r := openRecords(t, conns, 1)[0]
	ctx := context.Background()
	if _, _, ok, err := r.Load(ctx, "1001"); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	rec := presence.Record{Current: presence.Value{State: presence.Away, Message: `Lunch, "back" at 2`}, History: []presence.Value{{State: presence.Available}}}
	rev, err := r.Swap(ctx, "a+b@site", rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Swap(ctx, "a+b@site", rec, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create over an existing record: %v", err)
	}
	got, rev2, ok, err := r.Load(ctx, "a+b@site")
	if err != nil || !ok || rev2 != rev || got.Current != rec.Current || len(got.History) != 1 {
		t.Fatalf("load: %+v %d %v %v", got, rev2, ok, err)
	}
	rec.Current.State = presence.DND
	if _, err := r.Swap(ctx, "a+b@site", rec, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Swap(ctx, "a+b@site", rec, rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("a stale revision: %v", err)
	}
	if err := r.SaveRecord(ctx, "1002", presence.Record{Current: presence.Value{State: presence.XA}}); err != nil {
		t.Fatal(err)
	}
	all, err := r.Records(ctx)
	if err != nil || len(all) != 2 || all["a+b@site"].Current.State != presence.DND || all["1002"].Current.State != presence.XA {
		t.Fatalf("records %+v %v", all, err)
	}
}

// Two nodes change one user 1,000 times at once, each by loading the
// record and swapping it back with one more value in its history: the
// history ends with every value exactly once, each node's in its own
// order: some serial order of the 1,000 changes.
func TestRecordsConcurrentSwapsAreSerial(t *testing.T) {
	testenv.Long(t)
	_, conns := startCluster(t, 3)
	rs := openRecords(t, conns, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const each = 500
	var wg sync.WaitGroup
	conflicts := make([]int, 2)
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rs[w]
			for i := range each {
				for {
					rec, rev, _, err := r.Load(ctx, "1001")
					if err != nil {
						errs <- err
						return
					}
					rec.History = append(rec.History, presence.Value{State: presence.Away, Message: fmt.Sprintf("%d-%d", w, i)})
					rec.Current = rec.History[len(rec.History)-1]
					if _, err := r.Swap(ctx, "1001", rec, rev); err == nil {
						break
					} else if !errors.Is(err, ErrConflict) {
						errs <- err
						return
					}
					conflicts[w]++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec, _, _, err := rs[2].Load(ctx, "1001")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.History) != 2*each {
		t.Fatalf("%d values in the history, want %d (lost updates)", len(rec.History), 2*each)
	}
	next := []int{0, 0}
	for _, v := range rec.History {
		var w, i int
		if _, err := fmt.Sscanf(v.Message, "%d-%d", &w, &i); err != nil || i != next[w] {
			t.Fatalf("value %q out of order (writer %d expected %d)", v.Message, w, next[w])
		}
		next[w]++
	}
	t.Logf("conflicts retried: %v", conflicts)
}

// Losing one node of three changes nothing: records written through the
// others are read through the others.
func TestRecordsSurviveANode(t *testing.T) {
	nodes, conns := startCluster(t, 3)
	rs := openRecords(t, conns, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := rs[0].SaveRecord(ctx, "1001", presence.Record{Current: presence.Value{State: presence.Away}}); err != nil {
		t.Fatal(err)
	}
	_ = nodes[2].Close()
	// A write may wait for a new leader; it then goes through.
	var err error
	for try := 0; try < 100; try++ {
		if err = rs[0].SaveRecord(ctx, "1002", presence.Record{Current: presence.Value{State: presence.DND}}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("write after losing a node: %v", err)
	}
	// So may a read, while the others elect a new leader.
	var all map[string]presence.Record
	for ctx.Err() == nil {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		all, err = rs[1].Records(actx)
		acancel()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || all["1001"].Current.State != presence.Away || all["1002"].Current.State != presence.DND {
		t.Fatalf("read after losing a node: %+v %v", all, err)
	}
}

func TestNodeConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []NodeConfig{
		{Name: "", Listen: "127.0.0.1:0", DataDir: t.TempDir()},
		{Name: "n", Listen: "nonsense", DataDir: t.TempDir()},
		{Name: "n", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Peers: []string{"no-port"}, DataDir: t.TempDir()},
	} {
		if n, err := StartNode(ctx, cfg); err == nil {
			_ = n.Close()
			t.Errorf("%+v accepted", cfg)
		} else if !strings.Contains(err.Error(), "cluster") && !strings.Contains(err.Error(), "host:port") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
