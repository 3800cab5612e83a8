package webhook

import (
	"context"
	"errors"
	"time"

	"github.com/presenced/presenced/watch"
)

// The journal. The hub is in memory and numbers its changes afresh each
// run; webhooks need more: a target that is down across a restart must
// still get every change, in order. So one goroutine takes every change
// from the hub and appends it to a journal in the store, numbered with a
// sequence that survives restarts; each webhook delivers from the journal
// and keeps its own cursor there.
//
// The journal also keeps each hint's and provider's latest entry. A change
// whose state is the same as the latest is not a change, which is what
// makes restarts exact: after a restart the hub's snapshot is compared
// with the latest entries, and only what really differs is journalled
// (whatever happened while presenced was down is coalesced into it).

// journalBatch bounds the changes appended in one store transaction.
const journalBatch = 512

// journal runs until Close: subscribe to everything, journal the snapshot
// and every change; after the hub drops the subscription (presenced fell
// hopelessly behind, e.g. a stuck disk), subscribe again from where it was.
func (m *Manager) journal() {
	defer m.wg.Done()
	if m.cfg.Ready != nil {
		t := time.NewTimer(m.cfg.ReadyWait)
		select {
		case <-m.cfg.Ready:
		case <-t.C:
			m.cfg.Log.Warn().Dur("waited", m.cfg.ReadyWait).Msg("webhook journal starts before Asterisk was read: device states may still be unknown")
		case <-m.ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
	var from *watch.Position
	for m.ctx.Err() == nil {
		sub, snap := m.cfg.Hub.Subscribe(watch.Filter{All: true}, from)
		pos := snap.Position
		if !snap.Resumed {
			m.record(snap.Items)
		}
		for {
			evs, err := sub.Next(m.ctx)
			if err != nil {
				sub.Close()
				var dropped *watch.DroppedError
				if errors.As(err, &dropped) {
					m.cfg.Log.Warn().Str("reason", dropped.Reason).Msg("webhook journal fell behind the hub; resuming")
				}
				break
			}
			for len(evs) > 0 {
				n := min(len(evs), journalBatch)
				m.record(evs[:n])
				pos.Seq = evs[n-1].Seq
				evs = evs[n:]
			}
		}
		from = &pos
	}
}

// record appends the events that change something to the journal. A store
// failure is retried: the journal must not skip a change.
func (m *Manager) record(evs []*watch.Event) {
	if len(evs) == 0 {
		return
	}
	m.jmu.Lock()
	defer m.jmu.Unlock()
	now := m.cfg.Now()
	m.mu.Lock()
	head := m.head
	logged := len(m.workers) > 0
	var entries []Entry
	pending := map[string][]byte{} // a key's latest within this batch
	for _, ev := range evs {
		v, err := encodeValue(ev.Item, now)
		if err != nil {
			m.cfg.Log.Error().Err(err).Msg("webhook journal: change skipped")
			continue
		}
		prev, ok := pending[ev.Key]
		if !ok {
			if e, found := m.latest[ev.Key]; found {
				prev, ok = e.Value, true
			}
		}
		if ok && sameData(prev, v) {
			continue
		}
		pending[ev.Key] = v
		head++
		entries = append(entries, Entry{Seq: head, Key: ev.Key, Value: v})
	}
	m.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	if !logged {
		// Nobody to deliver to: memory only, until a webhook is created.
		// The ids given out are not kept across a restart, which is
		// harmless: nobody saw them.
		m.mu.Lock()
		for _, e := range entries {
			m.latest[e.Key] = e
		}
		m.head, m.floor, m.unsaved = head, head, true
		m.mu.Unlock()
		return
	}
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := m.cfg.Store.AppendJournal(m.ctx, entries)
		if err == nil {
			break
		}
		m.cfg.Log.Error().Err(err).Msg("webhook journal: cannot append; retrying")
		select {
		case <-time.After(wait):
		case <-m.ctx.Done():
			// Closing: what was not appended is compared again with the
			// hub's snapshot at the next start.
			return
		}
	}
	m.mu.Lock()
	for _, e := range entries {
		m.latest[e.Key] = e
	}
	m.head = head
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	m.trimLocked(m.ctx)
}

// trim removes the journal entries every webhook is past, and those beyond
// the backlog bound (whose webhooks will get the latest state instead).
func (m *Manager) trim(ctx context.Context) {
	m.jmu.Lock()
	defer m.jmu.Unlock()
	m.trimLocked(ctx)
}

// trimLocked is trim with jmu held.
func (m *Manager) trimLocked(ctx context.Context) {
	m.mu.Lock()
	upto := m.head
	for _, w := range m.workers {
		upto = min(upto, w.needs())
	}
	if m.head > m.cfg.MaxBacklog {
		upto = max(upto, m.head-m.cfg.MaxBacklog)
	}
	floor := m.floor
	m.mu.Unlock()
	if upto <= floor {
		return
	}
	if err := m.cfg.Store.TrimJournal(ctx, upto); err != nil {
		m.cfg.Log.Error().Err(err).Msg("webhook journal: cannot trim")
		return
	}
	m.mu.Lock()
	m.floor = max(m.floor, upto)
	m.mu.Unlock()
}
