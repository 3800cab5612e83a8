//go:build linux

package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/testenv"
)

// smallDialer makes connections whose receive buffer is tiny, so that a
// client that stops reading fills the server's socket quickly.
var smallDialer = &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
	})
	if err != nil {
		return err
	}
	return serr
}}

type stallRun struct {
	published int
	got       []int64 // events each reading watcher received
	stats     watch.Stats
	logs      string
}

// runStall has three watchers that read (two SSE, one WebSocket) and,
// when stalled is "sse" or "websocket", one of that kind that never reads.
// Changes are published in bursts, each only after every reader has the
// last (a gentle pace: a reader never has more than a burst waiting). It
// publishes until the stalled watcher's queue was coalesced (or, without
// one, `until` changes), then moves the hub's clock past HopelessAfter.
func runStall(t *testing.T, stalled string, until int) stallRun {
	const nHints, burst = 300, 50
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	hub := watch.New(watch.Config{Queue: 256, HopelessAfter: time.Minute, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	tb := hints.NewTable()
	for i := range nHints {
		st, _ := tb.Put(hints.Hint{Context: "internal", Exten: fmt.Sprint(1000 + i), Devices: []string{fmt.Sprintf("PJSIP/%d", 1000+i)}})
		hub.Append(change.Change{Kind: hints.KindHint, Key: st.Key(), Version: st.Version, Value: st})
	}
	var logs strings.Builder
	var logMu sync.Mutex
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Hub: hub, Hints: tb, WriteTimeout: time.Hour,
		Log: zerolog.New(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }))})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	counts := make([]atomic.Int64, 3)
	for i := range 2 {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/events?all=1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if sc.Text() == "event: hint" {
					counts[i].Add(1)
				}
			}
		}()
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true}`))
	go func() {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(b), `{"type":"hint"`) {
				counts[2].Add(1)
			}
		}
	}()

	var stallConn net.Conn
	switch stalled {
	case "sse":
		c, err := smallDialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /v1/events?all=1 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		stallConn = c
	case "websocket":
		var conn net.Conn
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			c, err := smallDialer.DialContext(ctx, n, a)
			conn = c
			return c, err
		}}}
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true}`))
		stallConn = conn // never read again
	}
	want := 3
	if stallConn != nil {
		want = 4
	}
	testenv.Eventually(t, "subscribers", func() bool { return hub.Subscribers() == want })

	published := 0
	states := []hints.DeviceState{hints.InUse, hints.NotInUse}
	publish := func() {
		for range burst {
			i := published % nHints
			hub.Append(hintItem(tb, fmt.Sprint(1000+i), states[(published/nHints)%2])...)
			published++
		}
		testenv.Eventually(t, "readers", func() bool {
			for i := range counts {
				if counts[i].Load() < int64(published) {
					return false
				}
			}
			return true
		})
	}
	for (stallConn != nil && hub.Stats().Coalesced == 0) || (stallConn == nil && published < until) {
		if published > 400000 {
			t.Fatalf("the stalled watcher was never coalesced (%d changes)", published)
		}
		publish()
	}
	// The stalled watcher stays hopelessly behind past HopelessAfter.
	now.Add(int64(2 * time.Minute))
	publish()
	if stallConn != nil {
		testenv.Eventually(t, "the drop", func() bool { return hub.Stats().Dropped == 1 && hub.Subscribers() == 3 })
		// Its connection is let go of (after the grace for a DROPPED
		// message), not held until the write deadline (an hour here).
		_ = stallConn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.Copy(io.Discard, stallConn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			logMu.Lock()
			t.Fatalf("the dropped watcher's connection was not closed (%d bytes read): %s", n, logs.String())
		}
	}
	run := stallRun{published: published, stats: hub.Stats()}
	for i := range counts {
		run.got = append(run.got, counts[i].Load())
	}
	logMu.Lock()
	run.logs = logs.String()
	logMu.Unlock()
	return run
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The must-hold: a watcher that never reads cannot slow the others. With
// one stalled client the readers get every change, as they do without it
// (counts, not times); the stalled one is coalesced, then dropped with a
// reason, and its connection closed.
func TestStalledWatcher(t *testing.T) {
	for _, kind := range []string{"sse", "websocket"} {
		t.Run(kind, func(t *testing.T) {
			with := runStall(t, kind, 0)
			without := runStall(t, "", with.published)
			for i := range 3 {
				if with.got[i] != int64(with.published) || without.got[i] != int64(without.published) {
					t.Fatalf("reader %d got %d of %d with a stalled watcher, %d of %d without", i, with.got[i], with.published, without.got[i], without.published)
				}
			}
			if without.stats.Coalesced != 0 || without.stats.Dropped != 0 {
				t.Fatalf("without a stalled watcher: %+v", without.stats)
			}
			if with.stats.Coalesced == 0 || with.stats.Dropped != 1 {
				t.Fatalf("with a stalled watcher: %+v", with.stats)
			}
			if !strings.Contains(with.logs, "watcher dropped") || !strings.Contains(with.logs, `"transport":"`+kind+`"`) ||
				!strings.Contains(with.logs, "changes waiting for more than 1m0s") {
				t.Fatalf("the drop is not logged with its reason: %s", with.logs)
			}
			t.Logf("%d changes; stalled watcher coalesced %d", with.published, with.stats.Coalesced)
		})
	}
}
