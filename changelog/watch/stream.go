package watch

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/presenced/presenced/changelog/change"
)

// Stream is a change log that numbers changes itself and is shared by the
// nodes of a cluster (cluster.Log, on NATS JetStream). With a Stream the
// hub numbers nothing: each node publishes its changes to the stream,
// every node reads the stream back, and delivers what it reads, with the
// stream's numbers. So an event has one number on every node, and a
// watcher resumes on any node with an id another gave it.
type Stream interface {
	Log
	// PublishEntries appends entries, each with an id that makes a
	// retried append not append twice, and returns their numbers. An
	// entry's Seq is the number of the latest entry of its key the hub
	// knows (0: none): one whose key has a later entry by now (another
	// node appended it) is not appended; its number is 0 and stale gives
	// that later entry. A key appears at most once in one call.
	PublishEntries(ctx context.Context, ids []string, entries []change.Entry) (seqs []uint64, stale []*change.Entry, err error)
	// Follow calls deliver with every entry after a number, in order,
	// until ctx ends.
	Follow(ctx context.Context, after uint64, deliver func([]change.Entry)) error
}

// outEntry is a change this node publishes to the stream.
type outEntry struct {
	id    string // the message id (a retried append is not appended twice)
	item  string // idOf
	entry change.Entry
}

// streamState is the hub's side of a Stream; guarded by hub.mu.
type streamState struct {
	outbox  []outEntry
	lastOut map[string][]byte // by item id: the last encoding published, to tell a change
	// by item id: the latest entry of the stream this node knows of
	// besides what it has read back (its own appends, and the entries that
	// refused one of its appends), which the follower may not have
	// delivered yet
	latest map[string]change.Entry
	// by item id: the highest Rev of its entries in the stream this node
	// knows of (an entry with a lower one is older, and never appended)
	revs    map[string]uint64
	queued  uint64 // entries ever put in the outbox
	acked   uint64 // entries the stream acknowledged
	ackedTo uint64 // the highest number the stream gave them
	nextID  uint64
	cancel  context.CancelFunc
	follow  chan struct{} // closed when the follower ends
}

// noteRev notes an entry of item in the stream with rev; hub.mu is held.
func (st *streamState) noteRev(item string, rev uint64) {
	if rev > st.revs[item] {
		st.revs[item] = rev
	}
}

// openStream starts publishing and following; hub.mu is not held.
func (h *Hub) openStream() {
	ctx, cancel := context.WithCancel(context.Background())
	h.mu.Lock()
	h.st.cancel = cancel
	st := h.st
	h.mu.Unlock()
	go h.publishStream()
	go func() {
		defer close(st.follow)
		for ctx.Err() == nil {
			h.mu.Lock()
			after := h.seq
			h.mu.Unlock()
			if err := h.cfg.Stream.Follow(ctx, after, h.deliverNumbered); err != nil && ctx.Err() == nil {
				if h.cfg.OnLogError != nil {
					h.cfg.OnLogError(fmt.Errorf("following the change log: %w", err))
				}
				time.Sleep(time.Second)
			}
		}
	}()
}

// queueStream puts a change in the outbox; hub.mu is held. It reports
// whether it did: an item that shows what this node last published, or
// the stream last held, is not a change.
func (h *Hub) queueStream(id string, it change.Change, enc []byte) bool {
	st := h.st
	last, ok := st.lastOut[id]
	if !ok {
		if cur, found := h.current[id]; found {
			last, ok = cur.enc, true
		}
	}
	if ok && Same(last, enc) {
		return false
	}
	st.lastOut[id] = enc
	st.outbox = append(st.outbox, outEntry{id: h.streamMsgID(), item: id, entry: change.Entry{Key: it.Key, Value: enc, Rev: it.Rev}})
	st.queued++
	return true
}

// streamMsgID returns a new message id; hub.mu is held.
func (h *Hub) streamMsgID() string {
	h.st.nextID++
	return h.epoch + "-" + h.node + "-" + strconv.FormatUint(h.st.nextID, 36)
}

// publishStream appends the outbox to the stream, in batches, until
// Close; an append that fails is retried with the same ids.
//
// Exactly once: two nodes that see the same change (both read one
// Asterisk; both learn a presence from the cluster) would both publish
// it. Each entry is appended only if its key's latest entry is still the
// one this node knows of (Stream.PublishEntries), and is not appended at
// all when that latest entry shows the same, or when this node has a
// later change of the same hint or provider queued (entries carry the
// whole state: the later one says all). One refused because another node
// appended meanwhile is checked again against that node's entry.
func (h *Hub) publishStream() {
	defer close(h.done)
	ctx := context.Background()
	for {
		quitting := false
		select {
		case <-h.logWake:
		case <-h.quit:
			quitting = true
		}
		for {
			h.mu.Lock()
			batch := h.streamBatch()
			if len(batch) == 0 {
				h.signalDurable() // entries dropped as appended already count
			}
			h.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			ids := make([]string, len(batch))
			entries := make([]change.Entry, len(batch))
			for i, o := range batch {
				ids[i], entries[i] = o.id, o.entry
			}
			var seqs []uint64
			var stale []*change.Entry
			if !h.appendRetrying(&quitting, func() error {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				var err error
				seqs, stale, err = h.cfg.Stream.PublishEntries(actx, ids, entries)
				return err
			}) {
				return
			}
			h.mu.Lock()
			rest := h.st.outbox[len(batch):]
			var again []outEntry
			for i, o := range batch {
				if seqs[i] != 0 {
					h.st.latest[o.item] = change.Entry{Seq: seqs[i], Key: o.entry.Key, Value: o.entry.Value, Rev: o.entry.Rev}
					h.st.noteRev(o.item, o.entry.Rev)
					h.st.ackedTo = max(h.st.ackedTo, seqs[i])
					h.st.acked++
					continue
				}
				if stale[i] != nil {
					h.st.latest[o.item] = *stale[i]
					h.st.noteRev(o.item, stale[i].Rev)
				}
				o.id = h.streamMsgID()
				again = append(again, o) // checked against the latest again, or dropped for a later change

			}
			h.st.outbox = append(again, rest...)
			if len(h.st.outbox) == 0 {
				h.st.outbox = nil
			}
			h.signalDurable()
			h.mu.Unlock()
		}
		if quitting {
			return
		}
	}
}

// streamBatch takes from the outbox's head the entries to append now:
// up to logBatch, each with the number of its key's latest entry this
// node knows of. Dropped here: an entry without a Rev with a later change
// of its item queued behind it (changes a node sees within one append's
// round trip are coalesced, as a watcher's are); one that shows what its
// key's latest entry shows (another node appended it first); and one
// whose Rev is below the highest the log holds for its key (the record
// has moved on, and the log has the newer change: the older is never
// appended after it).
// An entry with a Rev is otherwise always appended, in its turn: a
// client may have been told of it. hub.mu is held.
func (h *Hub) streamBatch() []outEntry {
	last := make(map[string]int, len(h.st.outbox)) // by item: its last change in the outbox
	for i, o := range h.st.outbox {
		last[o.item] = i
	}
	seen := make(map[string]struct{}, min(len(h.st.outbox), logBatch))
	kept := h.st.outbox[:0]
	n := 0
	for n < len(h.st.outbox) && len(kept) < logBatch {
		o := h.st.outbox[n]
		if _, dup := seen[o.item]; dup {
			break
		}
		n++
		if last[o.item] != n-1 && o.entry.Rev == 0 {
			// A later change of the item waits behind it: that one says
			// all (a node that saw a change late, after its site's other
			// node appended it and what followed, would otherwise append
			// it again, out of place).
			h.st.acked++
			continue
		}
		known, ok := h.st.latest[o.item]
		if cur, found := h.current[o.item]; found && (!ok || cur.Seq > known.Seq) {
			known, ok = change.Entry{Seq: cur.Seq, Value: cur.enc}, true
		}
		if ok && (Same(known.Value, o.entry.Value) || o.entry.Rev != 0 && h.st.revs[o.item] > o.entry.Rev) {
			h.st.acked++
			h.st.ackedTo = max(h.st.ackedTo, known.Seq) // Sync waits until it is read back
			continue
		}
		seen[o.item] = struct{}{}
		o.entry.Seq = known.Seq
		kept = append(kept, o)
	}
	// The kept entries move to the outbox's head, followed by the rest.
	batch := len(kept)
	h.st.outbox = append(kept, h.st.outbox[n:]...)
	return h.st.outbox[:batch]
}

// deliverNumbered takes entries the stream numbered, from any node:
// each becomes the current event of its hint or provider and goes to
// its watchers, with the stream's number.
func (h *Hub) deliverNumbered(entries []change.Entry) {
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range entries {
		if e.Seq <= h.seq {
			continue // read again after a reconnect
		}
		it, _, err := Decode(h.cfg.Kinds, e.Key, e.Value)
		it.Rev = e.Rev
		h.seq = e.Seq
		h.durable = e.Seq
		if err != nil {
			if h.cfg.OnLogError != nil {
				h.cfg.OnLogError(fmt.Errorf("change log entry %d: %w", e.Seq, err))
			}
			continue
		}
		h.st.noteRev(idOf(it), e.Rev)
		ev := &Event{Seq: e.Seq, Change: it, enc: e.Value}
		// Another node changed what this one last published: a later
		// change back to that value is a change again. (An entry no newer
		// than what this node had acknowledged may be its own, still on
		// its way back: then the comparison stays.)
		id := idOf(it)
		if lo, ok := h.st.lastOut[id]; ok && e.Seq > h.st.ackedTo && !Same(lo, e.Value) {
			delete(h.st.lastOut, id)
		}
		h.stats.Published++
		h.fanOut(ev, id, now)
	}
	h.unregisterDropped()
	h.signalDurable()
}

// syncStream waits until every change this node queued so far was
// acknowledged by the stream and read back from it.
func (h *Hub) syncStream(ctx context.Context) error {
	h.mu.Lock()
	want := h.st.queued
	h.mu.Unlock()
	for {
		h.mu.Lock()
		done := h.st.acked >= want && h.seq >= h.st.ackedTo
		ch := h.durableCh
		h.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// closeStream stops following; the outbox was flushed by publishStream.
// A follower stuck in a read of a cluster that lost its quorum is not
// waited for past a few seconds: it only delivers, and the process is
// stopping.
func (h *Hub) closeStream() {
	if h.st.cancel != nil {
		h.st.cancel()
		select {
		case <-h.st.follow:
		case <-time.After(5 * time.Second):
		}
	}
}
