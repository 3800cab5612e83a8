package httpapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
)

var errIdle = errors.New("idle")

// nextWithin waits for the subscriber's next events for at most d; errIdle
// when none came.
func nextWithin(ctx context.Context, sub *watch.Sub, d time.Duration) ([]*watch.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	evs, err := sub.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, errIdle
	}
	return evs, err
}

// dropGrace is how long a dropped watcher's stream may take to send its
// DROPPED error before its connection is cut.
const dropGrace = time.Second

// onDrop lets go of a client the hub dropped: its stream's goroutine may
// be blocked writing to a client that stopped reading (until the write
// deadline), so dropGrace after the drop force is called to cut the
// connection. The drop is logged with its reason. The returned stop must
// be called when the stream ends; force is never called after it. Nothing
// runs until a drop (no goroutine per watcher).
func (s *Server) onDrop(sub *watch.Sub, transport string, force func()) (stop func()) {
	var mu sync.Mutex
	over := false
	cancel := sub.AfterDrop(func() {
		var dropped *watch.DroppedError
		if errors.As(sub.Err(), &dropped) {
			s.cfg.Log.Warn().Str("transport", transport).Str("reason", dropped.Reason).Msg("watcher dropped for being hopelessly behind")
		}
		time.AfterFunc(dropGrace, func() {
			mu.Lock()
			defer mu.Unlock()
			if !over {
				force()
			}
		})
	})
	return func() {
		cancel()
		mu.Lock()
		over = true
		mu.Unlock()
	}
}

// Each event is encoded once per transport and shared by all its
// watchers (watch.Event.Memo).
const (
	memoSSE = iota
	memoWS
	// The same for tokens that see calls without their other party.
	memoSSEStates
	memoWSStates
)

// memoSlot is the memo of a transport's frames, for a watcher that sees
// calls' parties or not.
func memoSlot(slot int, hide bool) int {
	if hide {
		return slot + memoSSEStates
	}
	return slot
}

// phoneFor returns a phone's event as a watcher may see it.
func phoneFor(e calls.PhoneEvent, hide bool) calls.PhoneEvent {
	if hide {
		return e.WithoutParty()
	}
	return e
}

// forwardsFor returns a user's forwards as a watcher may see them: a
// "states" token (a wall board) sees whether they are on, not where they
// go.
func forwardsFor(f forward.Forwards, hide bool) forward.Forwards {
	if hide {
		return f.WithoutDestinations()
	}
	return f
}

// callsFor returns a device's calls as a watcher may see them.
func callsFor(d calls.DeviceCalls, hide bool) calls.DeviceCalls {
	if hide {
		return d.WithoutParties()
	}
	return d
}
