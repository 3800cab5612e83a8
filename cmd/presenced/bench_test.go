package main

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/presenced/presenced/internal/loadgen"
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
	go func() { _ = loadgen.ServeFloor(ln) }()
	benchHook(b, ln.Addr().String())
}
