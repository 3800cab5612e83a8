// Package ratelimit is a token bucket per key (a token, a user, a source
// address), on golang.org/x/time/rate, with a bounded number of keys: a
// door that limits by something an attacker chooses (an address, a
// login) must not grow without end.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Error is a request refused by a limit; RetryAfter is when the next one
// would be taken (HTTP's Retry-After).
type Error struct {
	What       string // "dials of 1001", for the message
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("too many %s; try again in %d s", e.What, RetryAfterSeconds(e.RetryAfter))
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1: what
// Retry-After says.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// RetryAfter returns the wait of err's limit, and whether err is one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter, true
	}
	return 0, false
}

// Keyed is a token bucket per key: Burst at once, then one every Every.
type Keyed struct {
	every time.Duration
	burst int
	max   int
	now   func() time.Time

	mu sync.Mutex
	by map[string]*rate.Limiter
}

// New returns a limit of burst at once, then one every every, per key, for
// at most maxKeys keys at a time. When more keys are in use, those whose
// bucket is full again (idle) are forgotten first; if none is, the
// fullest is. Forgetting a key can only give it its burst back, so the
// bound costs precision, never correctness of the rate over time for the
// keys that are busy.
func New(every time.Duration, burst, maxKeys int) *Keyed {
	return &Keyed{every: every, burst: burst, max: max(1, maxKeys), now: time.Now, by: map[string]*rate.Limiter{}}
}

// Allow takes one from key's bucket; when it is empty, ok is false and
// wait is how long until one is back.
func (k *Keyed) Allow(key string) (ok bool, wait time.Duration) {
	if k == nil {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.by[key]
	if l == nil {
		if len(k.by) >= k.max {
			k.evict(now)
		}
		l = rate.NewLimiter(rate.Every(k.every), k.burst)
		k.by[key] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Check is Allow as an error: nil, or an *Error naming what was limited.
func (k *Keyed) Check(key, what string) error {
	if ok, wait := k.Allow(key); !ok {
		return &Error{What: what, RetryAfter: wait}
	}
	return nil
}

// evict forgets the keys whose buckets are full; if none is, the
// fullest. k.mu is held.
func (k *Keyed) evict(now time.Time) {
	var fullest string
	best := -1.0
	for key, l := range k.by {
		t := l.TokensAt(now)
		if t >= float64(k.burst) {
			delete(k.by, key)
			continue
		}
		if t > best {
			fullest, best = key, t
		}
	}
	if len(k.by) >= k.max {
		delete(k.by, fullest)
	}
}

// Len is the number of keys held.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.by)
}

// Pair limits what is done for a user and what one token, login or
// channel does, whoever it does it for: the user's bucket takes burst at
// once then one every every; the asker's ten times that (an operator
// console acts for many users).
type Pair struct{ user, whom *Keyed }

// NewPair returns a Pair.
func NewPair(every time.Duration, burst int) *Pair {
	return &Pair{user: New(every, burst, 10000), whom: New(every/10, burst*10, 10000)}
}

// Check takes one from whom's and from user's buckets; what names the
// thing limited ("dials") in the error.
func (p *Pair) Check(whom, user, what string) error {
	if err := p.whom.Check(whom, what+" by "+whom); err != nil {
		return err
	}
	return p.user.Check(user, what+" for "+user)
}
