package webhook

import (
	"context"
	"time"

	"github.com/presenced/presenced/internal/clip"
)

// Shared is how the nodes of a cluster share webhooks
// (cluster.Webhooks): every node knows every webhook (the API answers
// the same on each), and one node at a time, the one holding its lease,
// delivers it, in order, from the cursor the last one stored. When that
// node dies, its lease expires and another node takes the webhook over,
// repeating what came after the stored cursor (at most one batch:
// deliveries are at least once, with their ids).
type Shared interface {
	// WatchWebhooks calls changed with every webhook's definition, the
	// existing first, then as nodes create and delete them (nil), until
	// ctx ends.
	WatchWebhooks(ctx context.Context, changed func(id string, config []byte)) error
	// Deliver waits until this node holds the webhook's lease; lost is
	// closed when it no longer does (ctx ended, or it could not be
	// renewed).
	Deliver(ctx context.Context, id string) (lost <-chan struct{}, err error)
	// Cursor returns the webhook's cursor as stored.
	Cursor(ctx context.Context, id string) (uint64, error)
	// Holder returns the node that delivers the webhook now ("": none).
	Holder(ctx context.Context, id string) (string, error)
}

// openShared starts following the cluster's webhooks.
func (m *Manager) openShared() {
	m.campaigns = map[string]context.CancelFunc{}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		_ = m.cfg.Shared.WatchWebhooks(m.ctx, m.sharedChanged)
	}()
}

// sharedChanged takes a webhook a node created or deleted (config nil):
// this node knows it, and competes for delivering it.
func (m *Manager) sharedChanged(id string, config []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if config == nil {
		if cancel, ok := m.campaigns[id]; ok {
			cancel()
			delete(m.campaigns, id)
		}
		delete(m.workers, id)
		return
	}
	if _, ok := m.campaigns[id]; ok {
		return // known (definitions do not change)
	}
	s, tmpl, err := m.readStored(id, config)
	if err != nil {
		// Written by something other than a node's API (anything that
		// reached the cluster's NATS could write there): never delivered.
		m.cfg.Log.Error().Err(err).Str("webhook", clip.Clip(id)).Msg("webhook: a definition in the cluster that presenced's API would refuse; not delivered")
		return
	}
	// An idle worker until this node delivers it: what List and Get show.
	idle := newWorker(m, s, tmpl, 0)
	idle.idle = true
	m.workers[id] = idle
	ctx, cancel := context.WithCancel(m.ctx)
	m.campaigns[id] = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.campaign(ctx, s, tmpl)
	}()
}

// campaign delivers a webhook whenever this node holds its lease, until
// ctx ends (the webhook deleted, the manager closed).
func (m *Manager) campaign(ctx context.Context, s subscription, tmpl template) {
	for ctx.Err() == nil {
		lost, err := m.cfg.Shared.Deliver(ctx, s.ID)
		if err != nil {
			continue // ctx ended
		}
		cursor, err := m.cfg.Shared.Cursor(ctx, s.ID)
		for err != nil && ctx.Err() == nil {
			time.Sleep(time.Second)
			cursor, err = m.cfg.Shared.Cursor(ctx, s.ID)
		}
		w := newWorker(m, s, tmpl, cursor)
		m.mu.Lock()
		if _, known := m.campaigns[s.ID]; !known || ctx.Err() != nil {
			m.mu.Unlock()
			w.cancel()
			<-lost
			return
		}
		m.workers[s.ID] = w
		m.mu.Unlock()
		m.cfg.Log.Info().Str("webhook", s.ID).Uint64("cursor", cursor).Msg("webhook: this node delivers it")
		go func() {
			select {
			case <-lost:
			case <-ctx.Done():
			}
			w.cancel()
		}()
		w.run()
		<-lost // given back (ctx ended) or lost: another node may take it
		m.cfg.Log.Info().Str("webhook", s.ID).Msg("webhook: this node no longer delivers it")
		m.mu.Lock()
		if m.workers[s.ID] == w {
			idle := newWorker(m, s, tmpl, 0)
			idle.idle = true
			m.workers[s.ID] = idle
		}
		m.mu.Unlock()
	}
}

// sharedInfo completes a webhook's status with what the cluster says:
// the node delivering it, and, when it is not this one, its cursor.
func (m *Manager) sharedInfo(ctx context.Context, in Info) Info {
	if m.cfg.Shared == nil {
		return in
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	in.Status.Node, _ = m.cfg.Shared.Holder(ctx, in.ID)
	if in.Status.Node != m.cfg.Node {
		if c, err := m.cfg.Shared.Cursor(ctx, in.ID); err == nil {
			in.Status.Cursor, in.Status.Backlog = c, 0
			if head := m.head(); head > c {
				in.Status.Backlog = head - c
			}
		}
	}
	return in
}
