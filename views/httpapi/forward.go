package httpapi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presenced/presenced/changelog/watch"
)

// forwardLinger is how long a forwarder waits for more changes before its
// goroutine ends: a watcher whose hints are quiet costs no goroutine, and
// a busy one does not start one per change.
const forwardLinger = 5 * time.Second

// forwarder sends a subscription's changes to one watcher (WebSocket or
// SSE). Its goroutine runs only while there are changes to send (and
// forwardLinger after), started by the hub's Notify: with ten thousand
// mostly idle watchers, a goroutine each waiting in Next would be most of
// what a watcher costs.
type forwarder struct {
	sub *watch.Sub
	ctx context.Context
	// deliver sends a batch; false when the watcher is gone.
	deliver func([]*watch.Event) bool
	// dropped tells the watcher the hub dropped it, and lets go of it.
	dropped func(error)

	running atomic.Bool
	wg      sync.WaitGroup
}

// start arms the forwarder; changes queued before it go out at once.
// Call it after the snapshot is written, so that changes follow it.
func (f *forwarder) start() {
	f.sub.Notify(f.kick)
	if f.sub.Pending() {
		f.kick()
	}
}

// kick starts the goroutine unless it runs; the hub calls it with its
// locks held, so it only starts it.
func (f *forwarder) kick() {
	if f.running.CompareAndSwap(false, true) {
		f.wg.Add(1)
		go f.run()
	}
}

func (f *forwarder) run() {
	defer f.wg.Done()
	for {
		evs, err := nextWithin(f.ctx, f.sub, forwardLinger)
		var dropped *watch.DroppedError
		switch {
		case err == errIdle:
			f.running.Store(false)
			// A change queued as this stopped found it running: look again.
			if !f.sub.Pending() || !f.running.CompareAndSwap(false, true) {
				return
			}
			continue
		case errors.As(err, &dropped):
			f.dropped(err)
			return
		case err != nil:
			return // closed, or the connection ended
		}
		if !f.deliver(evs) {
			return
		}
	}
}
