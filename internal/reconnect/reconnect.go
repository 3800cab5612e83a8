// Package reconnect is the reconnect loop of presenced's connections to
// Asterisk (ARI, AMI): capped, jittered, doubling backoff, reset on
// success; the first failure logged, then only a failure that differs, and
// one line when the connection recovers; silent when the context ends.
package reconnect

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Loop runs session until ctx ends. session returns when its connection
// fails; it calls up once it is connected (and resynchronised), which
// resets the backoff. down receives each failure (for status reporting).
// what names the connection in the log ("AMI"); lost says what presenced
// cannot do without it.
func Loop(ctx context.Context, log zerolog.Logger, what, lost string, minB, maxB time.Duration,
	session func(ctx context.Context, up func()) error, down func(error)) {
	if minB <= 0 {
		minB = time.Second
	}
	if maxB < minB {
		maxB = max(30*time.Second, minB)
	}
	backoff, lastMsg, failing := minB, "", false
	for ctx.Err() == nil {
		err := session(ctx, func() {
			backoff = minB
			if failing {
				log.Info().Msg(what + " connection recovered")
			} else {
				log.Info().Msg(what + " connected")
			}
			failing, lastMsg = false, ""
		})
		down(err)
		if ctx.Err() != nil {
			return
		}
		if msg := err.Error(); msg != lastMsg {
			log.Warn().Err(err).Dur("retry_in", backoff).Msg(what + " unavailable; " + lost)
			lastMsg = msg
		}
		failing = true
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxB)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// State is what a feed reports of its connection: up or not and why, and
// how many full resyncs it completed. Embed it; it is safe for concurrent
// use.
type State struct {
	mu      sync.Mutex
	up      bool
	err     error
	resyncs int
}

// Status reports whether the connection is up and, if not, why.
func (s *State) Status() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.err
}

// Resyncs counts the completed full resyncs.
func (s *State) Resyncs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resyncs
}

// SetStatus records whether the connection is up, and the failure if not.
func (s *State) SetStatus(up bool, err error) {
	s.mu.Lock()
	s.up, s.err = up, err
	s.mu.Unlock()
}

// Resynced counts one completed full resync.
func (s *State) Resynced() {
	s.mu.Lock()
	s.resyncs++
	s.mu.Unlock()
}
