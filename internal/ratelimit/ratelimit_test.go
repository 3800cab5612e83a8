package ratelimit

import (
	"testing"
	"time"
)

func TestKeyed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := New(2*time.Second, 3, 2)
	k.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatalf("take %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := k.Allow("a")
	if ok || wait <= 0 || wait > 2*time.Second {
		t.Fatalf("4th take: ok=%v wait=%v, want refused with a wait of at most 2s", ok, wait)
	}
	if ok, _ := k.Allow("b"); !ok {
		t.Fatal("another key shares the first one's bucket")
	}
	now = now.Add(2 * time.Second)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("one is back after Every, but was refused")
	}
	if ok, _ := k.Allow("a"); ok {
		t.Fatal("only one came back after Every")
	}
	// A refused take costs nothing: after Every again, one is there.
	now = now.Add(2 * time.Second)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("refused takes were counted")
	}
	err := k.Check("a", "dials of 1001")
	d, isLimit := RetryAfter(err)
	if !isLimit || d <= 0 || err.Error() != "too many dials of 1001; try again in 2 s" {
		t.Fatalf("Check = %v (%v, %v)", err, d, isLimit)
	}
}

func TestKeyedBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k := New(time.Minute, 2, 3)
	k.now = func() time.Time { return now }
	// "busy" uses its burst; idle keys come and go.
	k.Allow("busy")
	k.Allow("busy")
	for _, key := range []string{"x1", "x2", "x3", "x4", "x5", "x6"} {
		k.Allow(key)
		if k.Len() > 3 {
			t.Fatalf("%d keys held, at most 3", k.Len())
		}
	}
	if ok, _ := k.Allow("busy"); ok {
		t.Fatal("the busy key was forgotten before keys with more left in their buckets")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 30 * time.Second: 30} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := NewBackoff(3, time.Second, 8*time.Second, 100)
	b.now = func() time.Time { return now }
	for i := range 3 {
		if w := b.Wait("login:alice", "addr:127.0.0.1"); w != 0 {
			t.Fatalf("free failure %d: locked %v", i+1, w)
		}
		b.Failed("login:alice", "addr:127.0.0.1")
	}
	// Then 1 s, 2 s, 4 s, 8 s, 8 s.
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		b.Failed("login:alice")
		if w := b.Wait("login:alice", "addr:127.0.0.1"); w != want {
			t.Fatalf("locked %v, want %v", w, want)
		}
		now = now.Add(want)
		if w := b.Wait("login:alice"); w != 0 {
			t.Fatalf("still locked %v after the wait", w)
		}
	}
	// Another address is not held back by alice's login... but alice is.
	b.Failed("login:alice")
	if b.Wait("addr:10.0.0.9") != 0 || b.Wait("login:alice", "addr:10.0.0.9") == 0 {
		t.Fatal("keys mixed up")
	}
	b.Succeeded("login:alice")
	if b.Wait("login:alice") != 0 {
		t.Fatal("a success did not forget the login")
	}
	// Bounded.
	for i := range 500 {
		b.Failed(time.Duration(i).String())
	}
	if len(b.by) > 100 {
		t.Fatalf("%d keys held", len(b.by))
	}
}

func TestSampler(t *testing.T) {
	s := NewSampler(time.Hour, 2)
	var wrote, heldTotal int
	for range 10 {
		if ok, held := s.Allow(); ok {
			wrote++
			heldTotal += held
		}
	}
	if wrote != 2 || heldTotal != 0 {
		t.Fatalf("wrote %d, held reported %d", wrote, heldTotal)
	}
	s.lim.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if ok, held := s.Allow(); !ok || held != 8 {
		t.Fatalf("after the wait: %v, %d held", ok, held)
	}
}
