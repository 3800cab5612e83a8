package watch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presenced/presenced/changelog/change"
)

// idOf names a change's key across kinds, as the hub's maps hold it.
func idOf(c change.Change) string { return c.ID().String() }

// Event is a change with its sequence number. Events are shared between
// subscribers and the hub's history: they must not be modified.
type Event struct {
	Seq uint64
	change.Change
	memo [MemoSlots]atomic.Pointer[[]byte]
	enc  []byte // Encode's form, with a Log
	// superseded: a later event of the same hint or provider exists (set
	// and read under the hub's lock: Hub.order skips it).
	superseded bool
}

// Encoded returns the event as the log holds it (Encode), or nil for
// a hub without a Log.
func (e *Event) Encoded() []byte { return e.enc }

// MemoSlots is the number of encodings an event can keep (Memo).
const MemoSlots = 4

// Memo returns what build makes of the event for a transport's slot,
// building it the first time (callers racing to be first may each build;
// all get the bytes that won). An event goes to every subscriber that
// watches it: a transport that encodes it once, rather than once per
// subscriber, sends to thousands of watchers at the cost of one. build
// must depend on nothing but the event (and the hub's epoch), as every
// caller of a slot gets the same bytes, which it must not modify.
func (e *Event) Memo(slot int, build func(*Event) []byte) []byte {
	if p := e.memo[slot].Load(); p != nil {
		return *p
	}
	b := build(e)
	if !e.memo[slot].CompareAndSwap(nil, &b) {
		return *e.memo[slot].Load()
	}
	return b
}

// Position is where a subscriber is: the hub's epoch (a new one each time
// presenced starts, so numbers of an earlier run are never taken for this
// one's) and the last sequence number seen.
type Position struct {
	Epoch string
	Seq   uint64
}

// Snapshot is what a subscriber starts from.
type Snapshot struct {
	Position // the epoch, and the sequence number the snapshot is at
	// Resumed: the subscriber came back in time; Events missed are queued
	// on the Sub, and Items is empty.
	Resumed bool
	// Items: the current state of everything the filter selects, when not
	// resumed.
	Items []*Event
	// Fresh: a resume was asked for but was not possible (too old, another
	// epoch): Items is a fresh snapshot.
	Fresh bool
}

// Config configures a hub. Zero values take the defaults.
type Config struct {
	History       int           // events kept in memory for resume (default 10000)
	Queue         int           // a subscriber's backlog before coalescing (default 1024)
	HopelessAfter time.Duration // how long a coalesced backlog may stay over Queue (default 30s)
	Now           func() time.Time
	// Log, when set, is the durable change log (see Open): numbers survive
	// restarts, and resume reaches back as far as the log keeps entries.
	Log Log
	// Kinds reads back the values of the changes the log holds: every
	// kind appended must have its codec.
	Kinds change.Kinds
	// Ready, when set, holds the numbering of changes back until it is
	// closed or ReadyWait (default 30s) has passed: right after a start the
	// hub would otherwise log a hint's Idle before the feeds have read
	// Asterisk, and its real state again after. Meanwhile subscribers see
	// the state the log last held.
	Ready     <-chan struct{}
	ReadyWait time.Duration
	// Stream, when set, is a cluster's change log (stream.go): it numbers
	// the changes of every node; Log is then the Stream.
	Stream Stream
	// Node names this node in the ids of what it publishes to a Stream.
	Node string
	// Site, in a cluster of several sites, is this node's (Site): a
	// watcher's reference without a site means this one.
	Site string
	// OnLogError reports a failed append to the log; it is retried.
	OnLogError func(error)
	// CloseTimeout bounds how long Close waits for the log (default 10s).
	CloseTimeout time.Duration
}

// Hub fans changes out to subscribers.
type Hub struct {
	cfg   Config
	epoch string

	mu      sync.Mutex
	seq     uint64
	current map[string]*Event // by idOf
	version map[string]uint64 // by idOf: the highest Version seen
	// order holds the current events in sequence order, with superseded
	// ones among them until compacted: a snapshot walks it, in order,
	// without sorting.
	order []*Event
	live  int
	hist  []*Event // ring of the last cfg.History events
	head  int      // index of the oldest event in hist
	subs  map[*Sub]struct{}
	// Subscribers by what they watch, so that a change costs only its
	// watchers: those of everything, and those of its id.
	watchAll map[*Sub]struct{}
	watchID  map[string]map[*Sub]struct{}
	dropped  []*Sub

	// With a Log:
	held      map[string]change.Change // changes held back until ready, by item id
	holding   bool
	pending   []*Event      // numbered, not yet in the log
	durable   uint64        // the last number in the log
	durableCh chan struct{} // closed (and replaced) when durable grows
	logWake   chan struct{}
	quit      chan struct{}
	done      chan struct{}
	st        *streamState // with a Stream
	node      string

	stats Stats
}

// Stats are the hub's running totals, for metrics.
type Stats struct {
	Published uint64 // changes numbered and delivered
	Coalesced uint64 // queued changes replaced by later ones, over all subscribers
	Dropped   uint64 // subscribers dropped for being hopelessly behind
}

// Stats returns the running totals.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// New returns a hub with a new epoch.
func New(cfg Config) *Hub {
	if cfg.History <= 0 {
		cfg.History = 10000
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.HopelessAfter <= 0 {
		cfg.HopelessAfter = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	if cfg.ReadyWait <= 0 {
		cfg.ReadyWait = 30 * time.Second
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 10 * time.Second
	}
	var st *streamState
	if cfg.Stream != nil {
		cfg.Log = cfg.Stream
		st = &streamState{lastOut: map[string][]byte{}, latest: map[string]change.Entry{}, revs: map[string]uint64{}, follow: make(chan struct{})}
	}
	return &Hub{cfg: cfg, node: cfg.Node, st: st, epoch: hex.EncodeToString(b[:]), current: map[string]*Event{}, version: map[string]uint64{}, subs: map[*Sub]struct{}{},
		watchAll: map[*Sub]struct{}{}, watchID: map[string]map[*Sub]struct{}{},
		durableCh: make(chan struct{}), logWake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// Open reads the log (Config.Log): the hub continues its numbering, its
// epoch is the log's identity, and it starts from the state the log last
// held; then it starts writing every change to the log. Without a Log it
// does nothing. Call it before publishing.
func (h *Hub) Open(ctx context.Context) error {
	if h.cfg.Log == nil {
		close(h.done)
		return nil
	}
	id, err := h.cfg.Log.OpenLog(ctx)
	if err != nil {
		return err
	}
	head, _, latest, err := h.cfg.Log.LogState(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.epoch, h.seq, h.durable = id, head, head
	if len(h.current) == 0 {
		// Sized once for what the log holds (a start reads every key).
		h.current, h.version = make(map[string]*Event, len(latest)), make(map[string]uint64, len(latest))
		h.order = make([]*Event, 0, len(latest))
	}
	for _, e := range latest {
		it, _, err := Decode(h.cfg.Kinds, e.Key, e.Value)
		if err != nil {
			h.mu.Unlock()
			return fmt.Errorf("reading the change log: %w", err)
		}
		it.Rev = e.Rev
		if h.st != nil {
			h.st.noteRev(idOf(it), e.Rev)
		}
		h.setCurrent(&Event{Seq: e.Seq, Change: it, enc: e.Value})
	}
	slices.SortFunc(h.order, func(a, b *Event) int { return cmp.Compare(a.Seq, b.Seq) })
	// A Ready already closed (no feed to wait for) holds nothing: what is
	// published right after Open is in the next snapshot, not numbered
	// later by a goroutine a subscriber may overtake.
	hold := h.cfg.Ready != nil && !isClosed(h.cfg.Ready)
	if hold {
		h.holding, h.held = true, map[string]change.Change{}
	}
	h.mu.Unlock()
	if h.cfg.Stream != nil {
		h.openStream()
	} else {
		go h.writeLog()
	}
	if hold {
		go h.release()
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Close writes what the log still lacks (for at most CloseTimeout) and
// marks it closed; it is safe to call more than once.
func (h *Hub) Close() error {
	if h.cfg.Log == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.CloseTimeout)
	defer cancel()
	select {
	case <-h.quit:
		return nil
	default:
		close(h.quit)
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		return fmt.Errorf("closing the change log: %w", ctx.Err())
	}
	if h.st != nil {
		h.closeStream()
	}
	h.mu.Lock()
	complete := len(h.pending) == 0 && (h.st == nil || len(h.st.outbox) == 0)
	h.mu.Unlock()
	if !complete {
		return errors.New("closing the change log: changes not written")
	}
	return h.cfg.Log.CloseLog(ctx)
}

// Sync waits until every change numbered so far is in the log (at once
// without a Log).
func (h *Hub) Sync(ctx context.Context) error {
	if h.cfg.Stream != nil {
		return h.syncStream(ctx)
	}
	h.mu.Lock()
	want := h.seq
	h.mu.Unlock()
	for {
		head, grown := h.Durable()
		if head >= want || h.cfg.Log == nil {
			return nil
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Durable returns the last number in the log and a channel closed when it
// grows (readers of the log, such as webhooks, wait on it).
func (h *Hub) Durable() (uint64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.durable, h.durableCh
}

// Latest returns the latest change of every key of kind k the hub holds
// (a domain package starts from what the log last said of its keys).
func (h *Hub) Latest(k change.Kind) []change.Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []change.Change
	for _, ev := range h.order {
		if !ev.superseded && ev.Kind == k {
			out = append(out, ev.Change)
		}
	}
	return out
}

// Current returns the latest event of every hint and provider (removed
// hints included), in sequence order.
func (h *Hub) Current() []*Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Event, 0, h.live)
	for _, ev := range h.order {
		if !ev.superseded {
			out = append(out, ev)
		}
	}
	return out
}

// setCurrent makes ev the current event of its hint or provider; h.mu is
// held, and ev is the newest event (or, at Open, order is sorted after).
func (h *Hub) setCurrent(ev *Event) {
	id := idOf(ev.Change)
	if old, ok := h.current[id]; ok {
		old.superseded = true
	} else {
		h.live++
	}
	h.current[id] = ev
	h.order = append(h.order, ev)
	if len(h.order) > 2*h.live+1024 {
		kept := h.order[:0]
		for _, e := range h.order {
			if !e.superseded {
				kept = append(kept, e)
			}
		}
		clear(h.order[len(kept):])
		h.order = kept
	}
}

// hold keeps items back while the hub holds its numbering, and reports
// whether it did.
func (h *Hub) hold(items []change.Change) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.holding {
		return false
	}
	for _, it := range items {
		id := idOf(it)
		if it.Version != 0 && h.version[id] >= it.Version {
			continue
		}
		h.holdLocked(id, it)
	}
	return true
}

// holdLocked keeps the newest held item of an id; h.mu is held.
func (h *Hub) holdLocked(id string, it change.Change) {
	if old, ok := h.held[id]; !ok || it.Version == 0 || old.Version < it.Version {
		h.held[id] = it
	}
}

// release ends the hold of Config.Ready: the changes held are numbered,
// those that show what the log last held are not.
func (h *Hub) release() {
	t := time.NewTimer(h.cfg.ReadyWait)
	defer t.Stop()
	select {
	case <-h.cfg.Ready:
	case <-t.C:
	case <-h.quit:
	}
	h.mu.Lock()
	held := make([]change.Change, 0, len(h.held))
	for _, it := range h.held {
		held = append(held, it)
	}
	h.held, h.holding = nil, false
	h.mu.Unlock()
	slices.SortFunc(held, func(a, b change.Change) int { return cmp.Compare(a.Version, b.Version) })
	h.Append(held...)
}

// writeLog appends numbered events to the log, in batches, until Close;
// an append that fails is retried (a change is never skipped).
func (h *Hub) writeLog() {
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
			batch := h.pending
			if len(batch) > logBatch {
				batch = batch[:logBatch]
			}
			h.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			entries := make([]change.Entry, len(batch))
			for i, ev := range batch {
				entries[i] = change.Entry{Seq: ev.Seq, Key: ev.Key, Value: ev.enc}
			}
			if !h.appendRetrying(&quitting, func() error { return h.cfg.Log.AppendLog(ctx, entries) }) {
				return
			}
			h.mu.Lock()
			h.pending = h.pending[len(batch):]
			if len(h.pending) == 0 {
				h.pending = nil
			}
			h.durable = batch[len(batch)-1].Seq
			h.signalDurable()
			h.mu.Unlock()
		}
		if quitting {
			return
		}
	}
}

// logBatch bounds the entries appended in one transaction.
const logBatch = 4096

// Kinds returns the codecs the hub reads its log with (Config.Kinds).
func (h *Hub) Kinds() change.Kinds { return h.cfg.Kinds }

// Site returns the site of the hub's node (Config.Site): a watcher's
// reference that names no site means it.
func (h *Hub) Site() string { return h.cfg.Site }

// Epoch returns the hub's epoch.
func (h *Hub) Epoch() string { return h.epoch }

var _ change.Sink = (*Hub)(nil)

// Append numbers and delivers changes, in order (change.Sink); stale ones
// are skipped, and, with a Log, so are those that show what their key
// shows already. It never blocks on a subscriber.
func (h *Hub) Append(items ...change.Change) {
	if h.hold(items) {
		return // not encoded either: the start-up burst costs no encoding until ready
	}
	now := h.cfg.Now()
	var encs [][]byte
	if h.cfg.Log != nil {
		encs = make([][]byte, len(items))
		for i, it := range items {
			enc, err := Encode(it, now)
			if err != nil {
				if h.cfg.OnLogError != nil {
					h.cfg.OnLogError(err)
				}
				continue
			}
			encs[i] = enc
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	logged := false
	for i, it := range items {
		id := idOf(it)
		if it.Version != 0 && h.version[id] >= it.Version {
			continue
		}
		if h.holding {
			h.holdLocked(id, it)
			continue
		}
		var enc []byte
		if encs != nil {
			if enc = encs[i]; enc == nil {
				continue
			}
			if h.st != nil {
				// A cluster: the stream numbers it, and every node
				// delivers it as it reads it back (deliverNumbered).
				h.version[id] = max(h.version[id], it.Version)
				if h.queueStream(id, it, enc) {
					logged = true
				}
				continue
			}
			if cur, ok := h.current[id]; ok && Same(cur.enc, enc) {
				// Not a change; later versions are compared with this one.
				h.version[id] = max(h.version[id], it.Version)
				continue
			}
		}
		h.seq++
		h.stats.Published++
		ev := &Event{Seq: h.seq, Change: it, enc: enc}
		h.version[id] = max(h.version[id], it.Version)
		if enc != nil {
			h.pending = append(h.pending, ev)
			logged = true
		}
		h.fanOut(ev, id, now)
	}
	h.unregisterDropped()
	if logged {
		select {
		case h.logWake <- struct{}{}:
		default:
		}
	}
}

// fanOut makes ev (numbered) the current event of its id, keeps it in the
// history and queues it on its watchers; hub.mu is held. Publish and, in a
// cluster, deliverNumbered share it.
func (h *Hub) fanOut(ev *Event, id string, now time.Time) {
	h.setCurrent(ev)
	if len(h.hist) < h.cfg.History {
		h.hist = append(h.hist, ev)
	} else {
		h.hist[h.head] = ev
		h.head = (h.head + 1) % len(h.hist)
	}
	for s := range h.watchAll {
		h.deliver(s, ev, now)
	}
	for s := range h.watchID[id] {
		h.deliver(s, ev, now)
	}
}

// unregisterDropped lets go of the subscribers dropped while fanning out;
// hub.mu is held.
func (h *Hub) unregisterDropped() {
	for _, s := range h.dropped {
		h.unregister(s)
	}
	clear(h.dropped)
	h.dropped = h.dropped[:0]
}

// appendRetrying runs an append until it succeeds, reporting each failure
// and waiting longer each time (10 ms doubling to 5 s); false when the hub
// is quitting and the append still failed (Close reports what was not
// written). quitting is the caller's: once Close was asked for, one more
// try is made, then no more.
func (h *Hub) appendRetrying(quitting *bool, appendOnce func() error) bool {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := appendOnce()
		if err == nil {
			return true
		}
		if h.cfg.OnLogError != nil {
			h.cfg.OnLogError(err)
		}
		if *quitting {
			return false
		}
		select {
		case <-time.After(wait):
		case <-h.quit:
			*quitting = true
		}
	}
}

// signalDurable wakes those waiting on Durable or Sync; hub.mu is held.
func (h *Hub) signalDurable() {
	close(h.durableCh)
	h.durableCh = make(chan struct{})
}

// deliver queues ev on s; hub.mu is held.
func (h *Hub) deliver(s *Sub, ev *Event, now time.Time) {
	dropped, coalesced := s.push(ev, now, h.cfg)
	h.stats.Coalesced += coalesced
	if dropped {
		h.stats.Dropped++
		h.dropped = append(h.dropped, s)
	}
}

// register and unregister keep the indexes; hub.mu is held.
func (h *Hub) register(s *Sub) {
	h.subs[s] = struct{}{}
	if s.m.all {
		h.watchAll[s] = struct{}{}
		return
	}
	for _, id := range s.m.keys() {
		set, ok := h.watchID[id]
		if !ok {
			set = map[*Sub]struct{}{}
			h.watchID[id] = set
		}
		set[s] = struct{}{}
	}
}

func (h *Hub) unregister(s *Sub) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	delete(h.watchAll, s)
	for _, id := range s.m.keys() {
		if set, ok := h.watchID[id]; ok {
			delete(set, s)
			if len(set) == 0 {
				delete(h.watchID, id)
			}
		}
	}
}

// Subscribe registers a subscriber for f. With from set (a Position from
// an earlier subscription, of this run or, with a Log, of an earlier one),
// it resumes if it can. The snapshot and the registration happen together:
// no change falls between them.
func (h *Hub) Subscribe(f Filter, from *Position) (*Sub, Snapshot) {
	var logged []*Event
	if from != nil && h.cfg.Log != nil {
		logged = h.fromLog(*from)
	}
	s := &Sub{hub: h, m: f.compile(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.m.widenFrom(h.current)
	snap := Snapshot{Position: Position{Epoch: h.epoch, Seq: h.seq}}
	gone := false
	if from != nil {
		if missed, ok := h.since(*from, logged); ok {
			snap.Resumed = true
			now := h.cfg.Now()
			for _, ev := range missed {
				if !s.m.match(ev.Change) {
					continue
				}
				dropped, coalesced := s.push(ev, now, h.cfg)
				h.stats.Coalesced += coalesced
				if dropped {
					h.stats.Dropped++
					gone = true // the drop shows at the first Next
				}
			}
		} else {
			snap.Fresh = true
		}
	}
	if !snap.Resumed {
		snap.Items = make([]*Event, 0, h.live)
		for _, ev := range h.order {
			if !ev.superseded && !ev.Gone() && s.m.match(ev.Change) {
				snap.Items = append(snap.Items, ev)
			}
		}
	}
	if !gone {
		h.register(s)
	}
	return s, snap
}

// maxFromLog bounds the changes a resume reads from the log; further back
// the subscriber gets a fresh snapshot.
const maxFromLog = 200000

// fromLog reads from the log the events after from that the history in
// memory no longer holds (a resume after a restart, or from far back); nil
// when the history suffices or the log cannot give them all.
func (h *Hub) fromLog(from Position) []*Event {
	h.mu.Lock()
	epoch, seq, durable := h.epoch, h.seq, h.durable
	covered := len(h.hist) > 0 && from.Seq+1 >= h.hist[h.head].Seq
	h.mu.Unlock()
	if from.Epoch != epoch || from.Seq >= seq || covered {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*Event
	for after := from.Seq; after < durable; {
		es, err := h.cfg.Log.ReadLog(ctx, after, logBatch)
		if err != nil || len(es) == 0 {
			return nil
		}
		for _, e := range es {
			if e.Seq != after+1 || len(out) >= maxFromLog {
				return nil // trimmed meanwhile, or too far back
			}
			it, _, err := Decode(h.cfg.Kinds, e.Key, e.Value)
			if err != nil {
				return nil
			}
			out = append(out, &Event{Seq: e.Seq, Change: it, enc: e.Value})
			after = e.Seq
			if after >= durable {
				break
			}
		}
	}
	return out
}

// since returns the events after from: those read from the log, then
// those of the history in memory; false if they are not all there.
func (h *Hub) since(from Position, logged []*Event) ([]*Event, bool) {
	if from.Epoch != h.epoch || from.Seq > h.seq {
		return nil, false
	}
	after := from.Seq
	var out []*Event
	if len(logged) > 0 && logged[0].Seq == from.Seq+1 {
		out = logged
		after = logged[len(logged)-1].Seq
	}
	if after == h.seq {
		return out, true
	}
	n := len(h.hist)
	if n == 0 {
		return nil, false
	}
	oldest := h.hist[h.head].Seq
	if after+1 < oldest {
		return nil, false
	}
	start := int(after + 1 - oldest)
	out = slices.Grow(out, n-start)
	for i := start; i < n; i++ {
		out = append(out, h.hist[(h.head+i)%n])
	}
	return out, true
}

// Subscribers returns the number of subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *Hub) remove(s *Sub) {
	h.mu.Lock()
	h.unregister(s)
	h.mu.Unlock()
}

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("watch: subscription closed")

// DroppedError is returned by Next when the hub dropped a subscriber.
type DroppedError struct{ Reason string }

func (e *DroppedError) Error() string { return "watch: subscriber dropped: " + e.Reason }

// Sub is one subscription. Next and Close may be called from any goroutine.
type Sub struct {
	hub  *Hub
	m    matcher
	wake chan struct{}

	done        chan struct{} // closed when err is set
	afterDrop   func()
	notify      func()
	mu          sync.Mutex
	pending     []*Event
	err         error
	behindSince time.Time
	coalesced   uint64
}

// push queues an event and reports whether that dropped the subscriber
// and how many queued changes it coalesced; hub.mu is held.
func (s *Sub) push(ev *Event, now time.Time, cfg Config) (dropped bool, coalesced uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, 0
	}
	s.pending = append(s.pending, ev)
	if len(s.pending) > cfg.Queue {
		coalesced = s.coalesce()
		if len(s.pending) > cfg.Queue {
			if s.behindSince.IsZero() {
				s.behindSince = now
			} else if now.Sub(s.behindSince) >= cfg.HopelessAfter {
				s.err = &DroppedError{Reason: fmt.Sprintf("%d changes waiting for more than %v", len(s.pending), cfg.HopelessAfter)}
				close(s.done)
				if f := s.afterDrop; f != nil {
					s.afterDrop = nil
					go f()
				}
				s.pending = nil
				dropped = true
			}
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if s.notify != nil {
		s.notify()
	}
	return dropped, coalesced
}

// Notify registers f, called each time an event is queued and when the
// hub drops the subscriber, with the hub's locks held: f must not block
// nor call the hub (it may start a goroutine). It lets a transport run a
// forwarder only while there is something to forward, instead of a
// goroutine per idle watcher waiting in Next.
func (s *Sub) Notify(f func()) {
	s.mu.Lock()
	s.notify = f
	s.mu.Unlock()
}

// Pending reports whether events are queued, or the subscription ended
// (so that Next would return at once).
func (s *Sub) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0 || s.err != nil
}

// coalesce keeps the latest event of each hint or provider, in order, and
// returns how many it removed.
func (s *Sub) coalesce() uint64 {
	last := make(map[string]int, len(s.pending))
	for i, ev := range s.pending {
		last[idOf(ev.Change)] = i
	}
	out := s.pending[:0]
	for i, ev := range s.pending {
		if last[idOf(ev.Change)] == i {
			out = append(out, ev)
		}
	}
	n := uint64(len(s.pending) - len(out))
	s.coalesced += n
	clear(s.pending[len(out):])
	s.pending = out
	return n
}

// Next returns the events queued since the last call, waiting for one if
// there is none. It returns ErrClosed after Close, a *DroppedError once the
// hub dropped the subscriber, or the context's error.
func (s *Sub) Next(ctx context.Context) ([]*Event, error) {
	for {
		s.mu.Lock()
		if len(s.pending) > 0 {
			evs := s.pending
			s.pending = nil
			s.behindSince = time.Time{}
			s.mu.Unlock()
			return evs, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Follow hands every batch of changes the subscription gets to changes,
// in order, until ctx ends, the subscription is closed or the hub drops
// it, and returns why it stopped: ctx's error, ErrClosed, or the
// *DroppedError. It is the loop of every follower of the hub that has a
// goroutine of its own (a protocol facade's connection).
func (s *Sub) Follow(ctx context.Context, changes func([]*Event)) error {
	for {
		evs, err := s.Next(ctx)
		if err != nil {
			return err
		}
		changes(evs)
	}
}

// Follow subscribes for f and follows the hub until ctx ends: start gets
// each snapshot, changes every batch of changes after it. A follower the
// hub drops for falling hopelessly behind is subscribed again, from a
// fresh snapshot (what it missed is the latest state by then). It is the
// loop of a follower that serves many (the DPMA bridge).
func (h *Hub) Follow(ctx context.Context, f Filter, start func(Snapshot), changes func([]*Event)) error {
	for {
		sub, snap := h.Subscribe(f, nil)
		start(snap)
		err := sub.Follow(ctx, changes)
		sub.Close()
		var dropped *DroppedError
		if !errors.As(err, &dropped) {
			return err
		}
	}
}

// Done is closed when the subscription ends: closed, or dropped by the
// hub. A transport blocked writing to a client that stopped reading
// watches it to let go of that client at once.
func (s *Sub) Done() <-chan struct{} { return s.done }

// AfterDrop arranges for f to run, in a goroutine of its own, when the
// hub drops the subscriber (not when it is closed); at once if it already
// was. stop cancels it and reports whether that prevented f from running.
// Unlike a goroutine waiting on Done, it costs nothing while all is well,
// which counts with ten thousand watchers.
func (s *Sub) AfterDrop(f func()) (stop func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dropped *DroppedError
	if errors.As(s.err, &dropped) {
		go f()
		return func() bool { return false }
	}
	if s.err != nil {
		return func() bool { return false }
	}
	s.afterDrop = f
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.afterDrop == nil {
			return false
		}
		s.afterDrop = nil
		return true
	}
}

// Err returns nil while the subscription runs, then ErrClosed or the
// *DroppedError that ended it.
func (s *Sub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Coalesced returns how many queued changes were replaced by later ones.
func (s *Sub) Coalesced() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.coalesced
}

// Close ends the subscription and frees it.
func (s *Sub) Close() {
	s.hub.remove(s)
	s.mu.Lock()
	if s.err == nil {
		s.err = ErrClosed
		close(s.done)
	}
	s.afterDrop = nil
	s.notify = nil
	s.pending = nil
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
