package ami

// These tests pin down why package ami does not use goami2's Client and
// guards its Parse: each shows a defect of github.com/staskobzar/goami2
// v1.7.7. If a future version fixes them, they fail, and the choice can be
// revisited.

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/asterisk/ami/amitest"
)

// The client gives up on an event its consumer does not take within 10 ms.
func TestLibraryDropsEventsOfASlowConsumer(t *testing.T) {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := goami2.NewClient(conn, "ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 40 {
		srv.SetPresence("CustomPresence:x", amitest.Presence{State: "away"})
	}
	got := 0
	timeout := time.After(2 * time.Second)
loop:
	for {
		select {
		case m := <-cl.AllMessages():
			if m != nil && m.Field("Event") == "PresenceStateChange" {
				got++
			}
			time.Sleep(30 * time.Millisecond) // a consumer busy for 30 ms
		case <-timeout:
			break loop
		}
	}
	if got >= 40 {
		t.Fatalf("the library no longer drops events: %d of 40 arrived", got)
	}
}

// Parse panics on a frame cut short, and rejects a value holding a bare
// line feed, which Asterisk sends for a presence message with a line break.
func TestLibraryParseDefects(t *testing.T) {
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		_, _ = goami2.Parse("Event: x\r")
		return false
	}()
	if !panicked {
		t.Fatal("the library's Parse no longer panics on a cut frame")
	}
	if _, err := goami2.Parse("Event: PresenceStateChange\r\nMessage: two\nlines\r\n\r\n"); err == nil {
		t.Fatal("the library's Parse now accepts a bare line feed")
	}
}

// Login reads the banner with one Read: a banner that arrives in two
// pieces fails the login.
func TestLibraryLoginNeedsTheBannerInOneRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("Asterisk Call"))
		time.Sleep(100 * time.Millisecond)
		_, _ = c.Write([]byte(" Manager/11.0.0\r\n"))
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte("Response: Success\r\nMessage: Authentication accepted\r\n\r\n"))
		time.Sleep(200 * time.Millisecond)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := goami2.NewClientWithContext(context.Background(), conn, "ami", "ami"); err == nil || !strings.Contains(err.Error(), "prompt") {
		t.Fatalf("the library now reads a split banner: %v", err)
	}
}
