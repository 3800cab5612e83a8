package fastagi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/fastagi"
	"github.com/presenced/presenced/asterisk/fastagi/agitest"
	"github.com/presenced/presenced/internal/testenv"
)

// echoHandler sets one variable and ends the session.
var echoHandler = fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
	_ = s.SetVariable(ctx, "SEEN", s.Env.Script())
})

func runCall(t *testing.T, addr string, c *agitest.Call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Run(ctx, addr); err != nil {
		t.Fatal(err)
	}
}

// A client that connects and says nothing must not delay anyone else: the
// environment is read in the session's own goroutine.
func TestSilentClientDoesNotBlockOthers(t *testing.T) {
	srv := startServer(t, fastagi.Config{Handler: echoHandler, EnvTimeout: time.Hour})
	for range 3 {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// A slow one that stops half-way through its environment.
	slow, _ := net.Dial("tcp", srv.Addr().String())
	defer slow.Close()
	_, _ = slow.Write([]byte("agi_network: yes\nagi_netw"))

	c := &agitest.Call{Script: "ok"}
	runCall(t, srv.Addr().String(), c)
	if c.Var("SEEN") != "ok" {
		t.Fatalf("vars = %v", c.Vars())
	}
}

// At the cap, a new session waits for a slot rather than being refused.
func TestMaxSessionsWaitsForSlot(t *testing.T) {
	srv := startServer(t, fastagi.Config{Handler: echoHandler, MaxSessions: 2, EnvTimeout: time.Hour})
	a, _ := net.Dial("tcp", srv.Addr().String())
	b, _ := net.Dial("tcp", srv.Addr().String())
	defer b.Close()
	done := make(chan error, 1)
	c := &agitest.Call{Script: "third"}
	go func() { done <- c.Run(context.Background(), srv.Addr().String()) }()
	select {
	case err := <-done:
		t.Fatalf("third session ran past the cap of 2 (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	a.Close() // frees a slot
	if err := <-done; err != nil || c.Var("SEEN") != "third" {
		t.Fatalf("third session: %v, %v", err, c.Vars())
	}
}

func TestAllowList(t *testing.T) {
	var calls atomic.Int32
	h := fastagi.HandlerFunc(func(context.Context, *fastagi.Session) { calls.Add(1) })
	srv := startServer(t, fastagi.Config{Handler: h, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	c := &agitest.Call{Script: "x"}
	// The server closes at once, with the environment unread: the client
	// sees either the end of the stream or a reset (Asterisk: AGISTATUS=FAILURE).
	if err := c.Run(context.Background(), srv.Addr().String()); err != nil && !strings.Contains(err.Error(), "reset by peer") {
		t.Fatal(err)
	}
	if calls.Load() != 0 || len(c.Commands()) != 0 {
		t.Fatal("a client outside the allow-list got a session")
	}
	srv2 := startServer(t, fastagi.Config{Handler: h, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	runCall(t, srv2.Addr().String(), &agitest.Call{Script: "x"})
	if calls.Load() != 1 {
		t.Fatal("an allowed client got no session")
	}
}

func TestPanicEndsOnlyThatSession(t *testing.T) {
	h := fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		if s.Env.Script() == "boom" {
			panic("boom")
		}
		_ = s.SetVariable(ctx, "SEEN", "yes")
	})
	srv := startServer(t, fastagi.Config{Handler: h})
	runCall(t, srv.Addr().String(), &agitest.Call{Script: "boom"})
	c := &agitest.Call{Script: "fine"}
	runCall(t, srv.Addr().String(), c)
	if c.Var("SEEN") != "yes" {
		t.Fatal("server did not survive a panicking handler")
	}
}

func TestDeadChannelAndHangup(t *testing.T) {
	type res struct {
		statusErr error
		value     string
		hungUp    bool
	}
	got := make(chan res, 1)
	h := fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		_ = s.SetVariable(ctx, "FOO", "bar") // the channel hangs up right after this reply
		_, err := s.Command(ctx, "CHANNEL STATUS")
		v, _, _ := s.GetVariable(ctx, "FOO")
		got <- res{err, v, s.HungUp()}
	})
	srv := startServer(t, fastagi.Config{Handler: h})
	runCall(t, srv.Addr().String(), &agitest.Call{Script: "x", HangupAfter: 1})
	r := <-got
	if !errors.Is(r.statusErr, fastagi.ErrDeadChannel) || r.value != "bar" || !r.hungUp {
		t.Fatalf("%+v", r)
	}
}

// Asterisk closing mid-session ends the handler's commands with an error,
// every later one at once.
func TestClientClosesMidSession(t *testing.T) {
	errs := make(chan []error, 1)
	h := fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		var out []error
		for range 3 {
			_, err := s.Command(ctx, "NOOP")
			out = append(out, err)
		}
		errs <- out
	})
	srv := startServer(t, fastagi.Config{Handler: h})
	runCall(t, srv.Addr().String(), &agitest.Call{Script: "x", CloseAt: 2})
	out := <-errs
	if out[0] != nil || out[1] == nil || out[2] == nil || out[2].Error() != out[1].Error() {
		t.Fatalf("errors = %v", out)
	}
}

func TestRefusesWhatAGICannotCarry(t *testing.T) {
	errs := make(chan []error, 1)
	h := fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		errs <- []error{
			s.SetVariable(ctx, "X", "line\nbreak"),
			s.SetVariable(ctx, "X", strings.Repeat("x", fastagi.MaxCommand)),
			s.SetVariable(ctx, "", "x"),
		}
	})
	srv := startServer(t, fastagi.Config{Handler: h})
	c := &agitest.Call{Script: "x"}
	runCall(t, srv.Addr().String(), c)
	for i, err := range <-errs {
		if err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	if len(c.Commands()) != 0 {
		t.Fatalf("sent %q", c.Commands())
	}
}

// Close lets a running session finish within the drain time, and cuts one
// that does not.
func TestCloseDrains(t *testing.T) {
	started := make(chan struct{})
	finished := make(chan error, 1)
	h := fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		close(started)
		_, err := s.Command(ctx, "EXEC Wait 60") // the fake Asterisk never answers
		finished <- err
	})
	srv := fastagi.NewServer(fastagi.Config{Addr: "127.0.0.1:0", Handler: h, DrainTimeout: 100 * time.Millisecond})
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, _ := net.Dial("tcp", srv.Addr().String())
	defer conn.Close()
	_, _ = conn.Write([]byte("agi_network: yes\n\n"))
	<-started
	_ = srv.Close()
	if err := <-finished; !errors.Is(err, context.Canceled) {
		t.Fatalf("command after the drain time: %v", err)
	}
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Fatal("still accepting after Close")
	}
	_ = srv.Close() // idempotent
}

// 10,000 connections that open and close at once leave the server serving
// and without leaked goroutines.
func TestTenThousandConnections(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := fastagi.NewServer(fastagi.Config{Addr: "127.0.0.1:0", Handler: echoHandler})
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var dialed atomic.Int32
	d := net.Dialer{Timeout: 10 * time.Second}
	for range 10000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := d.Dial("tcp", srv.Addr().String()); err == nil {
				dialed.Add(1)
				c.Close()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of 10000 connections established", dialed.Load())
	c := &agitest.Call{Script: "after"}
	runCall(t, srv.Addr().String(), c)
	if c.Var("SEEN") != "after" {
		t.Fatal("server not serving after the storm")
	}
	_ = srv.Close()
	testenv.Eventually(t, "the storm's goroutines gone", func() bool { return runtime.NumGoroutine() <= before+2 }, func() string {
		buf := make([]byte, 1<<16)
		return fmt.Sprintf("%d goroutines left (before: %d)\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	})
}

// A handler's own context, cancelled while Asterisk says nothing, ends the
// command at once and leaves the session broken.
func TestCommandHonoursItsContext(t *testing.T) {
	got := make(chan error, 2)
	h := fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := s.Command(cctx, "EXEC Wait 60")
		got <- err
		_, err = s.Command(ctx, "NOOP")
		got <- err
	})
	srv := startServer(t, fastagi.Config{Handler: h, CommandTimeout: time.Hour})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("agi_network: yes\n\n")) // and never answers
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled command: %v", err)
	}
	if err := <-got; err == nil {
		t.Fatal("a broken session ran another command")
	}
}
