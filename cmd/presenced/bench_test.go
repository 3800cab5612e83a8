package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/asterisk/ari"
	"github.com/presenced/presenced/views/filter"

	"github.com/presenced/presenced/internal/loadgen"
	"github.com/presenced/presenced/internal/testenv"
)

// benchHook runs whole presence/set hooks against addr from 32 goroutines
// (b.SetParallelism with GOMAXPROCS=2 on the reference machine: 32 clients
// per 2 cores, adjust with -cpu). Allocations per op include the lean
// client's, which are the same for every server.
func benchHook(b *testing.B, addr string) {
	b.ReportAllocs()
	b.SetParallelism(16)
	var worker atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		ast := loadgen.NewAsterisk()
		user := strconv.Itoa(3000 + int(worker.Add(1)))
		for i := 0; pb.Next(); i++ {
			if err := ast.Session(context.Background(), addr, user, i%2 == 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHookPresenceSet measures presenced: the whole Main (FastAGI,
// hooks, presence service, bbolt store) in process.
func BenchmarkHookPresenceSet(b *testing.B) {
	m := openMain(b, b.TempDir(), "PRESENCED_AGI_MAX_SESSIONS=4096")
	defer m.Close()
	benchHook(b, m.AGIAddr().String())

}

// BenchmarkHookFloor measures the floor: a bare FastAGI handler that sends
// the same commands.
func BenchmarkHookFloor(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() { _ = loadgen.ServeFloor(ln, false) }()
	benchHook(b, ln.Addr().String())
}

// BenchmarkDeviceEventToHub: from a DeviceStateChanged frame written on
// the fake ARI's websocket to the hint's change leaving the hub, with
// presenced in process. Reports p50 and p99.
func BenchmarkDeviceEventToHub(b *testing.B) {
	srv := fakeARI(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "extensions.conf"), []byte("[internal]\nexten => 1001,hint,PJSIP/1001\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	m := openMain(b, b.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"),
		"PRESENCED_ARI_URL="+srv.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari")
	defer m.Close()
	testenv.Eventually(b, "presenced subscribed over ARI", func() bool { return srv.Connected("presenced") && len(srv.Subscriptions("presenced")) > 0 })
	sub, _ := m.hub.Subscribe(filter.Spec{Hints: []string{"1001@internal"}}.Watch(""), nil)
	defer sub.Close()
	time.Sleep(50 * time.Millisecond)
	drainSub(sub)
	states := [2]string{"INUSE", "NOT_INUSE"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		srv.SetDevice("PJSIP/1001", states[i%2])
		if _, err := sub.Next(context.Background()); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkDeviceEventBaseline: the same frame from the fake to a bare
// websocket reader: the floor of the above.
func BenchmarkDeviceEventBaseline(b *testing.B) {
	srv := fakeARI(b)
	ctx := context.Background()
	u := strings.Replace(srv.URL(), "http://", "ws://", 1) + "/events?app=bare&api_key=ari:ari"
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	testenv.Eventually(b, "the bare application connected", func() bool { return srv.Connected("bare") })
	cl := &ari.Client{URL: srv.URL(), User: "ari", Password: "ari"}
	if err := cl.Subscribe(ctx, "bare", []string{"deviceState:PJSIP/1001"}); err != nil {
		b.Fatal(err)
	}
	states := [2]string{"INUSE", "NOT_INUSE"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		srv.SetDevice("PJSIP/1001", states[i%2])
		if _, _, err := ws.Read(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
}
