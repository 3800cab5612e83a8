// Package testenv holds what tests share about the place they run in.
package testenv

import (
	"net"
	"strings"
	"testing"
	"time"
)

// Long marks a long test (kill -9, a cluster, a browser, a soak): `make
// test` (go test -short) skips it, and `make test-all` runs it. The tests
// that call it are listed by ./internal/testenv/longtests, which finds the
// call in their source.
func Long(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("a long test: make test-all runs it")
	}
}

// Eventually waits until cond holds, checking it again and again (every
// millisecond at first, then less often), and fails the test naming what
// it waited for when a minute passes first. It is how a test waits for an
// event it cannot be told of; a minute is long only for a failing test.
// On a failure, each of show (if any) says what is there instead.
func Eventually(t testing.TB, what string, cond func() bool, show ...func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			var instead []string
			for _, f := range show {
				instead = append(instead, f())
			}
			if len(instead) > 0 {
				t.Fatalf("timed out waiting for %s; instead: %s", what, strings.Join(instead, "; "))
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(wait)
	}
}

// FreeAddr returns a loopback address whose port is free now (for a
// process to be started on it: another may take it meanwhile, which the
// callers that start servers retry).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
