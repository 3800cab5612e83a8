package ratelimit

import (
	"net"
	"sync"
	"time"
)

// Backoff holds back a key (a login, a source address) after failures:
// the first Free failures cost nothing, then each one locks the key for
// twice as long as the one before, from Base to at most Max. A success
// forgets the key. It is what a password guesser meets: a handful of
// tries, then minutes between them, while the right password, typed
// once, still works.
type Backoff struct {
	free      int
	base, top time.Duration
	max       int
	now       func() time.Time

	mu sync.Mutex
	by map[string]*backoffEntry
}

type backoffEntry struct {
	failures int
	until    time.Time // locked until
	last     time.Time
}

// NewBackoff returns a Backoff for at most maxKeys keys at a time (the
// least recently failed are forgotten first).
func NewBackoff(free int, base, top time.Duration, maxKeys int) *Backoff {
	return &Backoff{free: free, base: base, top: top, max: max(1, maxKeys), now: time.Now, by: map[string]*backoffEntry{}}
}

// LoginKeys are the keys a login attempt is held back by: the name it
// tries (at most 64 bytes of it) and the address it comes from (without
// its port: a guesser opens a new connection per try).
func LoginKeys(name, remoteAddr string) []string {
	if len(name) > 64 {
		name = name[:64]
	}
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	return []string{"name:" + name, "addr:" + host}
}

// WithClock makes b read the time from now (tests, and servers whose
// clock is injected).
func (b *Backoff) WithClock(now func() time.Time) *Backoff {
	b.now = now
	return b
}

// Wait returns how long the longest locked of keys is still locked (0:
// none is).
func (b *Backoff) Wait(keys ...string) time.Duration {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if e := b.by[k]; e != nil && e.until.After(now) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait
}

// Failed counts a failure of each key and returns its failures so far
// (the most of keys).
func (b *Backoff) Failed(keys ...string) int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	most := 0
	for _, k := range keys {
		e := b.by[k]
		if e == nil {
			if len(b.by) >= b.max {
				b.evict()
			}
			e = &backoffEntry{}
			b.by[k] = e
		}
		e.failures++
		e.last = now
		if over := e.failures - b.free; over > 0 {
			d := b.base
			for i := 1; i < over && d < b.top; i++ {
				d *= 2
			}
			e.until = now.Add(min(d, b.top))
		}
		most = max(most, e.failures)
	}
	return most
}

// Succeeded forgets keys.
func (b *Backoff) Succeeded(keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		delete(b.by, k)
	}
}

// evict forgets the key that failed longest ago; b.mu is held.
func (b *Backoff) evict() {
	var oldest string
	var at time.Time
	for k, e := range b.by {
		if oldest == "" || e.last.Before(at) {
			oldest, at = k, e.last
		}
	}
	delete(b.by, oldest)
}

// Sampler lets a few log lines of a kind through, then one every Every,
// and says how many it held back in between: a flood of failures is one
// line every few seconds, not megabytes.
type Sampler struct {
	lim  *Keyed
	mu   sync.Mutex
	held int
}

// NewSampler lets burst lines through at once, then one every every.
func NewSampler(every time.Duration, burst int) *Sampler {
	return &Sampler{lim: New(every, burst, 1)}
}

// Allow reports whether to write this line, and how many were held back
// since the last one written.
func (s *Sampler) Allow() (ok bool, held int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, _ := s.lim.Allow(""); !ok {
		s.held++
		return false, 0
	}
	held, s.held = s.held, 0
	return true, held
}
