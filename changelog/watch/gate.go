package watch

import (
	"sync"
	"sync/atomic"
)

// Gate is closed once each of the feeds it waits for (ARI, AMI) has read
// Asterisk once: the hub numbers no change before (Config.Ready).
type Gate struct {
	ready chan struct{}
	left  atomic.Int32
}

// NewGate returns a gate waiting for n feeds; with none it is open.
func NewGate(n int) *Gate {
	g := &Gate{ready: make(chan struct{})}
	g.left.Store(int32(n))
	if n <= 0 {
		close(g.ready)
	}
	return g
}

// Ready is closed once every feed was up.
func (g *Gate) Ready() <-chan struct{} { return g.ready }

// Up returns what one feed calls each time it is up: the first call
// counts it, and every call then runs then (nil: nothing).
func (g *Gate) Up(then func()) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			if g.left.Add(-1) == 0 {
				close(g.ready)
			}
		})
		if then != nil {
			then()
		}
	}
}
