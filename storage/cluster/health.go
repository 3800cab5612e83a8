package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Health is whether the cluster answers this node, probed every
// HealthEvery (each probe waiting up to probeWait): NATS connected, and
// the change log's stream answering (its leader elected and reachable
// from this node's server). Nothing else
// tells a silent cut soon: a request on a dead link waits for its own
// deadline, and a node whose embedded server lost its routes is still
// connected to it.
type Health struct {
	mu     sync.Mutex
	lastOK time.Time // the last answer (the start, before any)
	err    error     // the last probe's failure (nil after an answer)
}

// HealthEvery is how often the cluster is probed; CutAfter how long it
// may go without answering before the node counts as cut off.
const (
	HealthEvery = 500 * time.Millisecond
	probeWait   = time.Second
	CutAfter    = 2 * time.Second
)

// Probe probes the cluster every HealthEvery until ctx ends.
func (c *Cluster) Probe(ctx context.Context) {
	t := time.NewTicker(HealthEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, probeWait)
		err := c.probeOnce(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.health.note(err, time.Now())
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (c *Cluster) probeOnce(ctx context.Context) error {
	if !c.Conn.Connected() {
		return ErrCutOff
	}
	_, err := c.Log.Status(ctx)
	return err
}

func (h *Health) note(err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	if err == nil {
		h.lastOK = now
	}
}

// Cut says whether this node is cut off from the cluster at now: since
// when it last heard from it, and why ("" when it is not).
func (c *Cluster) Cut(now time.Time) (since time.Time, why string) {
	h := &c.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if !c.Conn.Connected() {
		return h.lastOK, "not connected to NATS"
	}
	if h.err == nil || now.Sub(h.lastOK) < CutAfter {
		return time.Time{}, ""
	}
	return h.lastOK, fmt.Sprintf("the cluster has not answered since %s: %v", h.lastOK.UTC().Format(time.RFC3339), h.err)
}
