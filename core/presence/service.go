package presence

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/rs/zerolog"
)

// Record is what presenced remembers of one user: the presence it last
// wrote or saw, the earlier presences for restore (oldest first), and
// whether Current still has to be written to Asterisk.
type Record struct {
	Current Value   `json:"current"`
	History []Value `json:"history,omitempty"`
	Pending bool    `json:"pending,omitempty"`
	// Written, in a cluster, is by site the presence that site's Asterisk
	// was last seen to hold by presenced (written by it, or taken from it):
	// what a node compares its Asterisk with to tell a change made there
	// (Asterisk differs from Written) from one made at another site that
	// it has yet to write (Current differs from Written). See Reconcile.
	Written map[string]Value `json:"written,omitempty"`
}

// Validate checks every value of a record as a value is checked before
// it is written (a record read from a cluster could have been written by
// anything that reached it), and the sites' names.
func (r Record) Validate() error {
	for _, v := range append([]Value{r.Current}, r.History...) {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	for site, v := range r.Written {
		// "" is a cluster without sites.
		if site != "" {
			if err := ValidateSite(site); err != nil {
				return err
			}
		}
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// written returns a copy of r with Written[site] = v.
func (r Record) written(site string, v Value) Record {
	w := maps.Clone(r.Written)
	if w == nil {
		w = map[string]Value{}
	}
	w[site] = v
	r.Written = w
	return r
}

// Store keeps records durably. The bbolt store in package store implements
// it. The service reads every record once, at Start, and then keeps them in
// memory: a hook costs one durable write and no read.
type Store interface {
	SaveRecord(ctx context.Context, user string, rec Record) error
	// Records returns every stored record.
	Records(ctx context.Context) (map[string]Record, error)
}

// Shared is the cluster's side of users' records (cluster.Records).
type Shared interface {
	// Lock takes the user's lease in the cluster, waiting while another
	// node holds it; unlock gives it back.
	Lock(ctx context.Context, user string) (unlock func(), err error)
	// Load returns the user's record as last saved by any node, and its
	// revision (0 and ok false: none).
	Load(ctx context.Context, user string) (rec Record, rev uint64, ok bool, err error)
	// Swap saves the user's record if it is still at revision rev (0:
	// none), and returns the new revision: a lease that expired during an
	// operation (a node stalled past it) cannot overwrite what another
	// node saved meanwhile.
	Swap(ctx context.Context, user string, rec Record, rev uint64) (uint64, error)
}

// Change is one visible change of a provider's presence.
type Change struct {
	User     string // empty for a provider that is not a presenced user's
	Provider string
	Value    Value
	Previous Value
	// Invalid: Asterisk cannot evaluate the provider (Observe).
	Invalid bool
	// Timer is true when a timed presence ended, rather than a caller
	// asking for the change.
	Timer bool
	// Elsewhere: the change was made outside presenced (a phone, the CLI,
	// other dialplan) and seen on AMI.
	Elsewhere bool
	// Seq orders the changes the service reports: of two changes of one
	// provider, the one with the higher Seq is the newer, whatever order
	// the Listener was called in.
	Seq uint64
	// Rev, in a cluster, is the revision of the user's record the change
	// shows (0: unknown, or not a presenced user's provider). It orders
	// one user's changes across nodes in the change log (change.Rev).
	Rev uint64
}

// Listener hears the service's changes (the hint table).
type Listener interface {
	PresenceChanged(Change)
}

// Queuer is met by a Store that takes saves in the order asked and lets
// the caller wait for each later (store.DB): the service queues a user's
// save under the user's lock, and waits for it after announcing the
// change, so that the change log's entry shares the save's commit.
type Queuer interface {
	QueueRecord(ctx context.Context, user string, rec Record) (wait func() error)
}

// ListenerOf is met by a Listener that takes many changes at once (the
// hint table): Open hands it every user's presence in one call.
type ListenerOf interface {
	PresenceChangedAll([]Change)
}

// ListenerFunc is a function as a Listener.
type ListenerFunc func(Change)

// PresenceChanged calls f.
func (f ListenerFunc) PresenceChanged(c Change) { f(c) }

type listenNone struct{}

func (listenNone) PresenceChanged(Change) {}

// DNDSwitch drives the device that shows a user's DND on every phone's
// BLF key (DNDDevice names it): on is BUSY, off INVALID.
type DNDSwitch interface {
	SetDND(ctx context.Context, user string, on bool) error
}

// Config configures a Service.
type Config struct {
	Store Store
	// Background writes presence when no channel is at hand (timed presence
	// ending). Nil, or a write that fails as UNAVAILABLE, leaves the new
	// presence pending until FlushPending or the user's next operation.
	Background Writer
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// MaxHistory bounds the restore memory per user (default 20).
	MaxHistory int
	// Listener hears every visible change: presenced's own (confirmed by
	// Asterisk) and those made elsewhere (Observe), outside the service's
	// locks (nil: none). Calls may come from several goroutines;
	// Change.Seq orders them.
	Listener Listener
	// Log gets the failures of background work (timers, the DND device),
	// which has no caller to return them to, and the end of each timed
	// presence.
	Log zerolog.Logger
	// DND, when set, is the user's DND device: BUSY exactly while the
	// user's presence is dnd, whatever put it there or took it away.
	DND DNDSwitch
	// EchoWait is how long a write presenced made waits for its echo on
	// AMI (default 10s); see Observe.
	EchoWait time.Duration
	// Shared, in a cluster, is how nodes share users' records: each
	// operation holds the user's lease in the whole cluster and starts from
	// the record as the cluster last saved it (Store saves it there). A
	// node that cannot reach the cluster answers UNAVAILABLE and changes
	// nothing.
	Shared Shared
	// Observed: changes made elsewhere are reported through Observe (AMI is
	// configured). A change an operation finds when it reads Asterisk first
	// is then left to Observe, which has it in Asterisk's order; without
	// it, the operation announces it.
	Observed bool
	// Site, in a cluster, is the site of this node's Asterisk (the key of
	// Record.Written); "" for a cluster of one unnamed site.
	Site string
	// ChangeLog, when set, is waited for by every write that changed
	// something, whatever door it came through: the write answers once the
	// change is in the log, or UNAVAILABLE when the log cannot take it
	// (the change is applied, and logged once the log is back). A timed
	// presence ending has nobody to answer and does not wait.
	ChangeLog change.Logged
	// Budget bounds how long a write waits for the cluster (the user's
	// lease, the record) and the change log, from its start (0: as long
	// as its caller allows): past it, the write answers UNAVAILABLE, so
	// that a call running a hook is not held by a cluster that is away.
	Budget time.Duration
}

// Service sets, reads, toggles, restores and times presence. Operations on
// one user are serialised; different users proceed in parallel.
type Service struct {
	cfg Config

	// One lock per user, made when a user's operation starts and freed
	// when its last waiter is done: a user's hook waits for nobody else's.
	// (Lock stripes shared by users that hash alike made hooks of
	// unrelated users wait for each other's Asterisk round trips.)
	lmu   sync.Mutex
	locks map[string]*userLock

	rmu  sync.Mutex
	recs map[string]Record // every user's record, as stored
	// revs, in a cluster: by user, the latest revision of the record
	// this node knows of, and the presence it holds (recs may be ahead
	// of it while a save is under way).
	revs map[string]revision

	seq  uint64                // the last Change.Seq given; under rmu
	echo map[string][]expected // by user: own writes whose AMI echo has not come; under rmu
	dnd  map[string]bool       // by user: the DND device as last set; absent: unknown; under rmu
	// Users whose DND device must be set again to match their presence, by
	// the DND worker.
	dndDirty map[string]struct{} // under rmu
	dndForce map[string]struct{} // of dndDirty, those to set even if never set before; under rmu
	unsaved  map[string]uint64   // users whose record the store did not take, with the Seq of the save; under rmu
	dndWake  chan struct{}

	// Users to reconcile (a cluster; see Reconcile), and the wake-up of
	// the workers that do.
	qmu       sync.Mutex
	queue     map[string]struct{}
	queueWake chan struct{}

	tmu    sync.Mutex
	timers map[string]expiry
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// nextSeq returns a new Change.Seq.
func (s *Service) nextSeq() uint64 {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.seq++
	return s.seq
}

// expected is a write presenced made, waiting for its AMI echo.
type expected struct {
	v   Value
	at  time.Time
	seq uint64
}

// DefaultMaxHistory is the default depth of the restore memory.
const DefaultMaxHistory = 20

// backgroundTimeout bounds one timer-driven write to Asterisk.
const backgroundTimeout = 10 * time.Second

// NewService returns a service; call Start to arm the timers of stored
// timed presence.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("presence service needs a store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxHistory <= 0 {
		cfg.MaxHistory = DefaultMaxHistory
	}
	if cfg.EchoWait <= 0 {
		cfg.EchoWait = 10 * time.Second
	}
	if cfg.Listener == nil {
		cfg.Listener = listenNone{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, locks: map[string]*userLock{}, recs: map[string]Record{}, revs: map[string]revision{}, timers: map[string]expiry{},
		echo: map[string][]expected{}, dnd: map[string]bool{}, dndDirty: map[string]struct{}{}, dndForce: map[string]struct{}{}, unsaved: map[string]uint64{}, dndWake: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel}, nil
}

// Open loads the stored records, announces each user's last known
// presence (Listener), and arms a timer for every timed presence; those
// that ended while presenced was stopped revert at once. Call it before
// any operation.
func (s *Service) Open(ctx context.Context) error {
	recs, err := s.cfg.Store.Records(ctx)
	if err != nil {
		return WrapError(CodeInternal, err, "loading presence records")
	}
	// Every user's presence is announced at once, in the users' order
	// (a start with many users is mostly this).
	users := slices.Sorted(maps.Keys(recs))
	changes := make([]Change, len(users))
	s.rmu.Lock()
	s.recs = recs // the store's map is the caller's
	for i, user := range users {
		s.seq++
		changes[i] = Change{User: user, Provider: Provider(user), Value: recs[user].Current, Seq: s.seq}
	}
	s.rmu.Unlock()
	if l, ok := s.cfg.Listener.(ListenerOf); ok {
		l.PresenceChangedAll(changes)
	} else {
		for _, c := range changes {
			s.cfg.Listener.PresenceChanged(c)
		}
	}
	for _, c := range changes {
		if !c.Value.Expires.IsZero() {
			s.schedule(c.User, c.Value.Expires)
		}
	}
	if s.cfg.DND != nil {
		s.wg.Add(1)
		go s.dndWorker()
	}
	s.wg.Add(1)
	go s.saveAgain()
	return nil
}

// SaveRetry is how often records the store did not take are saved again.
const SaveRetry = 2 * time.Second

// saveAgain saves the records the store did not take, until it takes them.
func (s *Service) saveAgain() {
	defer s.wg.Done()
	t := time.NewTicker(SaveRetry)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		s.rmu.Lock()
		users := slices.Collect(maps.Keys(s.unsaved))
		s.rmu.Unlock()
		if s.cfg.Shared != nil {
			// A cluster: the record may have moved on at another node;
			// reconciling takes what this site's Asterisk holds into it
			// (it holds a write whose record was not saved).
			s.rmu.Lock()
			clear(s.unsaved)
			s.rmu.Unlock()
			for _, u := range users {
				s.Reconcile(u)
			}
			continue
		}
		for _, u := range users {
			unlock := s.lock(u)
			s.rmu.Lock()
			rec := s.recs[u]
			s.rmu.Unlock()
			ctx, cancel := context.WithTimeout(s.ctx, backgroundTimeout)
			err := s.cfg.Store.SaveRecord(ctx, u, rec)
			cancel()
			if err == nil {
				s.rmu.Lock()
				delete(s.unsaved, u)
				s.rmu.Unlock()
			}
			unlock()
			if err != nil {
				break // the store still refuses: try again later
			}
		}
	}
}

// Current returns every known user's current presence.
func (s *Service) Current() map[string]Value {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	out := make(map[string]Value, len(s.recs))
	for u, r := range s.recs {
		out[u] = r.Current
	}
	return out
}

// Lookup returns a user's current presence and whether it still waits to
// be written to Asterisk; ok is false for a user presenced never saw.
func (s *Service) Lookup(user string) (v Value, pending, ok bool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	r, ok := s.recs[user]
	return r.Current, r.Pending, ok
}

// record returns a copy of the user's record that the caller may change.
func (s *Service) record(user string) Record {
	s.rmu.Lock()
	rec := s.recs[user]
	s.rmu.Unlock()
	rec.History = slices.Clone(rec.History)
	return rec
}

// Close stops the timers and background work and waits for what is
// running to finish. Timed presence stays in the store and is re-armed by
// the next Open.
func (s *Service) Close() error {
	s.tmu.Lock()
	s.closed = true
	for u, e := range s.timers {
		e.timer.Stop()
		delete(s.timers, u)
	}
	s.tmu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Get returns the user's presence. With a channel writer it is read from
// Asterisk (presence may be changed outside presenced) and a pending write
// is applied first; without one it is the last known value.
func (s *Service) Get(ctx context.Context, w Writer, user string) (Value, error) {
	return s.mutate(ctx, w, user, nil)
}

// Set sets the user's presence; the presence before it is remembered for
// Restore. A value with Expires reverts by itself when that time comes.
func (s *Service) Set(ctx context.Context, w Writer, user string, v Value) (Value, error) {
	if err := v.Validate(); err != nil {
		return Value{}, err
	}
	return s.mutate(ctx, w, user, func(r *Record, _ time.Time) error {
		s.push(r, v)
		return nil
	})
}

// Toggle sets v, or, if the user is already in v's state, restores the
// presence before it (not_set when nothing is remembered).
func (s *Service) Toggle(ctx context.Context, w Writer, user string, v Value) (Value, error) {
	if err := v.Validate(); err != nil {
		return Value{}, err
	}
	return s.mutate(ctx, w, user, func(r *Record, now time.Time) error {
		if r.Current.State != v.State {
			s.push(r, v)
		} else if !restore(r, now, v.State) {
			r.Current = Value{}
		}
		return nil
	})
}

// Restore returns the user to the presence before the current one, skipping
// timed presences that ended meanwhile. NOT_FOUND when nothing is left.
func (s *Service) Restore(ctx context.Context, w Writer, user string) (Value, error) {
	return s.mutate(ctx, w, user, func(r *Record, now time.Time) error {
		if !restore(r, now, anyState) {
			return Errorf(CodeNotFound, "there is no earlier presence of %s to restore", user)
		}
		return nil
	})
}

// SetDND is what a DND key does (a phone's, a client's): on sets the
// presence dnd, off ends it (Off: the presence before comes back).
func (s *Service) SetDND(ctx context.Context, user string, on bool) error {
	var err error
	if on {
		_, err = s.Set(ctx, nil, user, Value{State: DND})
	} else {
		_, err = s.Off(ctx, nil, user, DND)
	}
	return err
}

// Off ends state: if the user is in it, the most recent presence in
// another state comes back (not_set when nothing is remembered), however
// many times state was set; otherwise nothing changes.
func (s *Service) Off(ctx context.Context, w Writer, user string, state State) (Value, error) {
	return s.mutate(ctx, w, user, func(r *Record, now time.Time) error {
		if r.Current.State != state {
			return errUnchanged
		}
		if !restore(r, now, state) {
			r.Current = Value{}
		}
		return nil
	})
}

// FlushPending writes every pending presence with the background writer;
// the caller knows Asterisk is reachable again (the AMI feed reconnected).
func (s *Service) FlushPending(ctx context.Context) error {
	var pending []string
	s.rmu.Lock()
	for user, rec := range s.recs {
		if rec.Pending {
			pending = append(pending, user)
		}
	}
	s.rmu.Unlock()
	var errs []error
	for _, user := range pending {
		if _, err := s.mutate(ctx, nil, user, nil); err != nil {
			errs = append(errs, err)
		}
	}
	s.reconcileAll()
	return errors.Join(errs...)
}

// push makes v current and remembers the current value, unless v shows the
// same presence (pressing "away" twice must not need two restores).
func (s *Service) push(r *Record, v Value) {
	if r.Current.Same(v) {
		r.Current.Expires = v.Expires
		return
	}
	r.History = append(r.History, r.Current)
	if over := len(r.History) - s.cfg.MaxHistory; over > 0 {
		r.History = append(r.History[:0], r.History[over:]...)
	}
	r.Current = v
}

// anyState is a restore that skips no state.
const anyState State = 255

// restore pops the most recent remembered presence that has not ended and
// is not in state skip (anyState: any state will do).
func restore(r *Record, now time.Time, skip State) bool {
	for len(r.History) > 0 {
		top := r.History[len(r.History)-1]
		r.History = r.History[:len(r.History)-1]
		if !top.Expired(now) && top.State != skip {
			r.Current = top
			return true
		}
	}
	return false
}

// mutate is the one path of every operation: validate the user, lock it,
// take its record, learn what Asterisk holds now (through the caller's
// channel, or the background writer: every write reads first, whatever
// its entry, so that restore and timed presence come back to a presence
// set elsewhere), apply op, write and confirm, store, re-arm the timer,
// drive the DND device and announce, all under the user's lock.
// op nil means "read, and flush if pending"; w nil means an operation
// without a channel (REST, WebSocket, the board, a timer).
//
// The DND device and the presence are written in the order that never
// shows DND on a BLF key for a user whose presence is not dnd: leaving
// dnd, the device goes INVALID before the presence is written; entering,
// it goes BUSY after the presence was confirmed.
func (s *Service) mutate(ctx context.Context, w Writer, user string, op func(*Record, time.Time) error) (Value, error) {
	return s.mutateAs(ctx, w, user, op, false)
}

// mutateAs is mutate; timer says the operation is a timed presence
// ending (Change.Timer), not a caller's. The change is handed to the
// Listener once the user's lock is released, and while the record's save,
// queued under the lock, is on its way to disk: the change log's entry and
// the record share a commit of the store (the hook answers once both are
// on disk).
func (s *Service) mutateAs(ctx context.Context, w Writer, user string, op func(*Record, time.Time) error, timer bool) (Value, error) {
	if err := ValidateUser(user); err != nil {
		return Value{}, err
	}
	// The cluster and the change log get the write's budget, from now:
	// a node cut off, or a log electing its leader, answers UNAVAILABLE
	// within it. Asterisk gets the caller's time.
	cctx := ctx
	if s.cfg.Budget > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, s.cfg.Budget)
		defer cancel()
	}
	v, after, err := s.mutateLocked(ctx, cctx, w, user, op, timer)
	if after.release != nil {
		defer within(cctx, after.release)
	}
	if after.change != nil {
		s.cfg.Listener.PresenceChanged(*after.change)
	}
	if after.saved != nil {
		err = s.saved(user, after.seq, after.saved())
		if err != nil {
			return Value{}, err
		}
	}
	if err == nil && after.change != nil && !timer && s.cfg.ChangeLog != nil {
		if lerr := s.cfg.ChangeLog.Sync(cctx); lerr != nil {
			return Value{}, ErrChangeLog(lerr)
		}
	}
	return v, err
}

// afterLock is what an operation leaves to do once the user's lock is
// released: a change to announce, and a save to wait for (Seq: the
// change's).
type afterLock struct {
	change *Change
	saved  func() error
	seq    uint64
	// release gives back the user's lease in the cluster, held while the
	// change is logged.
	release func()
}

// saved takes the outcome of a user's save: a record the store did not
// take is saved again (saveAgain) until it does. The Seq of the save
// keeps a late report of an older save from clearing a newer one's.
func (s *Service) saved(user string, seq uint64, err error) error {
	s.rmu.Lock()
	if err != nil {
		s.unsaved[user] = max(s.unsaved[user], seq)
	} else if s.unsaved[user] <= seq {
		delete(s.unsaved, user)
	}
	s.rmu.Unlock()
	if err != nil {
		code := CodeInternal
		if s.cfg.Shared != nil {
			code = CodeUnavailable // the cluster is away; Asterisk holds the value
		}
		return WrapError(code, err, "saving the presence record of "+user)
	}
	return nil
}

// mutateLocked is mutateAs under the user's lock (and, in a cluster, its
// lease); cctx bounds what it asks of the cluster.
func (s *Service) mutateLocked(ctx, cctx context.Context, w Writer, user string, op func(*Record, time.Time) error, timer bool) (_ Value, after afterLock, _ error) {
	// In a cluster, an operation holding the user's lock may be waiting
	// on the cluster: the wait for it counts in the budget. Alone, it
	// waits on Asterisk, whose time does not.
	lctx := ctx
	if s.cfg.Shared != nil {
		lctx = cctx
	}
	unlock, err := s.lockWithin(lctx, user)
	if err != nil {
		return Value{}, afterLock{}, err
	}
	defer unlock()
	loaded := false // a record of the user exists (in a cluster: in the cluster)
	var rev uint64  // in a cluster: the record's revision, to save it by
	if s.cfg.Shared != nil {
		release, r, ok, err := s.shared(cctx, user)
		if err != nil {
			return Value{}, afterLock{}, err
		}
		// A change to announce keeps the lease until it is logged
		// (mutateAs gives it back): no other node changes the user before
		// the change is in the log, so the log holds every confirmed
		// change in the record's order. Otherwise it is given back here.
		defer func() {
			if after.change == nil {
				within(cctx, release)
			} else {
				after.release = release
			}
		}()
		loaded, rev = ok, r
	} else {
		s.rmu.Lock()
		_, loaded = s.recs[user]
		s.rmu.Unlock()
	}
	rec := s.record(user)
	before := rec.Current
	// dirty: Asterisk holds a presence set outside presenced, now rec's;
	// converge: a cluster's record this site's Asterisk has yet to hold;
	// agreed: only rec.Written changed (this site holds rec.Current).
	dirty, converge, agreed := false, false, false
	reader := w
	if reader == nil {
		reader = s.cfg.Background
	}
	var readSeq uint64
	asterisk := rec.Current // what Asterisk holds, as far as presenced knows
	if reader != nil && !rec.Pending {
		readSeq = s.nextSeq() // before the read: what it finds is at least this new
		cur, err := reader.ReadPresence(ctx, Provider(user))
		switch {
		case err == nil:
			cur = cur.Sanitize()
			switch s.side(rec, cur, loaded) {
			case asteriskChanged:
				// Changed outside presenced (a phone, the CLI, other dialplan):
				// that is the presence now, and it has no timer of ours.
				rec.Current = cur
				dirty = true
			case clusterChanged:
				// Another site changed it: this site's Asterisk is to
				// follow (written below, as a pending write is).
				converge = true
			}
			asterisk = cur
			if s.cfg.Shared != nil && !dirty && !converge {
				if w, ok := rec.Written[s.cfg.Site]; !ok || !w.Same(cur) {
					rec = rec.written(s.cfg.Site, cur) // agreed, now on record
					agreed = true
				}
			}
		case w == nil && ErrorCode(err) == CodeUnavailable:
			// No channel and AMI away: go on with what presenced knows; the
			// write waits for Asterisk (pending).
		default:
			return Value{}, afterLock{}, err
		}
	}
	// seq places the announcement of this operation among the changes AMI
	// reports: at the moment Asterisk was seen to hold the value announced
	// (read, or written and confirmed), so that a change made elsewhere
	// and reported meanwhile is not undone by it.
	var seq uint64
	if dirty {
		seq = readSeq
	}
	changed := false
	if op != nil {
		switch err := op(&rec, s.cfg.Now()); {
		case errors.Is(err, errUnchanged):
		case err != nil:
			return Value{}, afterLock{}, err
		default:
			changed = true
		}
	}
	flush := (rec.Pending || converge) && (w != nil || s.cfg.Background != nil)
	if !changed && !dirty && !flush && !agreed {
		s.syncDNDLocked(ctx, user, rec)
		return rec.Current, afterLock{}, nil
	}
	if changed || flush {
		if rec.Current.State != DND && s.dndMaybeOn(user, asterisk) {
			s.setDND(ctx, user, false)
		}
		wseq, err := s.write(ctx, w, user, &rec)
		if err != nil {
			s.markDND(user) // the device may be off while the presence stayed dnd
			return Value{}, afterLock{}, err
		}
		seq = wseq
	}
	if s.cfg.Shared != nil && !rec.Pending {
		rec = rec.written(s.cfg.Site, rec.Current) // this site's Asterisk holds it
	}
	if seq == 0 {
		seq = s.nextSeq() // pending: what presenced knows, as of now
	}
	// Asterisk holds the new presence (it was confirmed): presenced's
	// memory and the watchers follow it before the record is on disk, so
	// that a save the store refuses (a full disk) leaves presenced agreeing
	// with Asterisk: the record is then saved again until the store takes
	// it.
	after.change = s.commit(user, rec, before, timer && changed, seq, s.announced(changed || flush))
	after.seq = seq
	if s.cfg.Shared != nil {
		newRev, err := s.cfg.Shared.Swap(cctx, user, rec, rev)
		if err == nil {
			s.rmu.Lock()
			s.known(user, newRev, rec.Current)
			s.rmu.Unlock()
			if after.change != nil {
				after.change.Rev = newRev
			}
		}
		after.saved = func() error { return err }
	} else if q, ok := s.cfg.Store.(Queuer); ok {
		after.saved = q.QueueRecord(ctx, user, rec)
	} else {
		err := s.cfg.Store.SaveRecord(ctx, user, rec)
		after.saved = func() error { return err }
	}
	s.syncDNDLocked(ctx, user, rec)
	return rec.Current, after, nil
}

// within runs f, waiting for it while ctx lasts: giving a lease back to
// a cluster that does not answer goes on in the background (it expires
// anyway) rather than hold the write past its budget.
func within(ctx context.Context, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// revision is a record's revision in the cluster and the presence it
// holds.
type revision struct {
	rev uint64
	v   Value
}

// known notes a revision of user's record; s.rmu is held.
func (s *Service) known(user string, rev uint64, v Value) {
	if rev >= s.revs[user].rev {
		s.revs[user] = revision{rev, v}
	}
}

// shared takes the user's lease in the cluster and makes the user's record
// the one the cluster last saved (another node may have changed it), with
// its timer armed here too: whichever node's timer fires first, under the
// lease, ends the timed presence, and the others find it ended.
func (s *Service) shared(ctx context.Context, user string) (release func(), rev uint64, found bool, err error) {
	release, err = s.cfg.Shared.Lock(ctx, user)
	if err != nil {
		return nil, 0, false, WrapError(CodeUnavailable, err, "taking the lease of "+user+" in the cluster")
	}
	rec, rev, ok, err := s.cfg.Shared.Load(ctx, user)
	if err != nil {
		within(ctx, release)
		return nil, 0, false, WrapError(CodeUnavailable, err, "reading the record of "+user+" from the cluster")
	}
	if ok {
		s.rmu.Lock()
		s.recs[user] = rec
		s.known(user, rev, rec.Current)
		s.rmu.Unlock()
		s.schedule(user, rec.Current.Expires)
	}
	return release, rev, ok, nil
}

// announced reports whether a change an operation made or found is to be
// announced by it: a write, or a value found by reading Asterisk first
// when no Observe stream reports it.
func (s *Service) announced(wrote bool) bool { return wrote || !s.cfg.Observed }

// commit makes rec the user's record in memory and re-arms its timer;
// the user's lock is held. It returns the change to announce, if any.
func (s *Service) commit(user string, rec Record, before Value, timer bool, seq uint64, announce bool) *Change {
	s.rmu.Lock()
	s.recs[user] = rec
	s.rmu.Unlock()
	s.schedule(user, rec.Current.Expires)
	if !announce || before.Same(rec.Current) {
		return nil
	}
	if timer {
		s.cfg.Log.Info().Str("user", user).Str("state", rec.Current.State.String()).Str("previous", before.State.String()).
			Msg("timed presence ended")
	}
	return &Change{User: user, Provider: Provider(user), Value: rec.Current, Previous: before, Timer: timer, Seq: seq}
}

// Observe takes a provider's presence as AMI reports it
// (PresenceStateChange events and PresenceStateList entries).
//
// The rule for presenced's own writes and their echoes: a write presenced
// makes is expected (before it is made: its echo may come before the
// read-back that confirms it), announced once Asterisk confirmed it, and
// its echo announces nothing new. AMI delivers Asterisk's changes in the
// order Asterisk made them, and the echoes of presenced's writes in the
// order it wrote, so for each user:
//   - an event equal to the oldest write still expected is taken for its
//     echo; if later writes are still expected, it announces nothing (they
//     are newer, and shown already);
//   - any other event while a write is expected happened before that
//     write, which Asterisk holds now: it is dropped, so a view never moves
//     back to a value Asterisk has left;
//   - while a write waits for Asterisk (pending), events are dropped too:
//     the write, when it goes out, replaces what they say;
//   - with nothing expected, an event is a change made elsewhere: announced
//     once, taken as the user's presence (the restore memory builds on it),
//     and the DND device follows it.
//
// An expected echo that does not come within EchoWait (AMI was away) is
// forgotten, and so is every expected echo when AMI reconnects
// (ForgetEchoes), since the list read then says what Asterisk holds.
func (s *Service) Observe(provider string, v Value, invalid bool) {
	user, err := ParseProvider(provider)
	if err != nil {
		// Not a presenced user's provider: shown as Asterisk reports it.
		s.cfg.Listener.PresenceChanged(Change{Provider: provider, Value: v, Invalid: invalid, Elsewhere: true, Seq: s.nextSeq()})
		return
	}
	now := s.cfg.Now()
	s.rmu.Lock()
	q := s.echo[user]
	for len(q) > 0 && now.Sub(q[0].at) > s.cfg.EchoWait {
		q = q[1:] // its echo was lost (AMI away at the time)
	}
	i := -1
	if len(q) > 0 && !invalid && q[0].v.Same(v) {
		i = 0
		q = q[1:]
	}
	rec, known := s.recs[user]
	if len(q) > 0 || rec.Pending {
		if len(q) > 0 {
			s.echo[user] = q
		} else {
			delete(s.echo, user)
		}
		s.rmu.Unlock()
		// Superseded by a write of presenced's that Asterisk holds, or
		// will hold: a pending write waits for Asterisk to come back.
		return
	}
	delete(s.echo, user)
	before := rec.Current
	elsewhere := false
	if !invalid && i < 0 && (!known || !rec.Current.Same(v)) {
		elsewhere = true
		rec.Current = v.Sanitize()
		rec.Current.Expires = time.Time{}
		s.recs[user] = rec
		if on, ok := s.dnd[user]; !ok || on != (v.State == DND) {
			s.queueDNDLocked(user, false)
		}
	}
	// What Asterisk reports has no end time: a timed presence it echoes,
	// or shows again after a reconnect, is announced as the record holds
	// it, with its end (views show "until 14:30").
	// It shows the record (in a cluster, at its revision), or a change
	// made here that the record has yet to take (no revision).
	shown, rev := v, uint64(0)
	if !invalid && known && !elsewhere && rec.Current.Same(v) {
		shown = rec.Current
		if r := s.revs[user]; r.v.Same(v) {
			rev = r.rev
		}
	}
	s.seq++
	seq := s.seq
	s.rmu.Unlock()
	s.cfg.Listener.PresenceChanged(Change{User: user, Provider: Provider(user), Value: shown, Previous: before, Invalid: invalid, Elsewhere: i < 0, Seq: seq, Rev: rev})
	if elsewhere {
		s.observedElsewhere(user, v, rec)
	}
}

// ForgetEchoes forgets every expected echo: AMI reconnected, and the
// echoes of writes made while it was away are lost; the presence list
// read next says what Asterisk holds.
func (s *Service) ForgetEchoes() {
	s.rmu.Lock()
	clear(s.echo)
	s.rmu.Unlock()
}

// expect records a write about to be made, whose echo will come, and
// returns the Seq of its announcement.
func (s *Service) expect(user string, v Value) uint64 {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	q := s.echo[user]
	if len(q) >= 64 {
		q = q[1:] // a user written this often without echoes: AMI is not there
	}
	s.seq++
	s.echo[user] = append(q, expected{v: v, at: s.cfg.Now(), seq: s.seq})
	return s.seq
}

// unexpect forgets an expected echo: the write failed, or Asterisk did
// not keep it.
func (s *Service) unexpect(user string, seq uint64) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	q := s.echo[user]
	for i, e := range q {
		if e.seq == seq {
			s.echo[user] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(s.echo[user]) == 0 {
		delete(s.echo, user)
	}
}

// dndMaybeOn reports whether the user's DND device may be BUSY: it was set
// so, or is unknown and Asterisk's presence is dnd.
func (s *Service) dndMaybeOn(user string, asterisk Value) bool {
	if s.cfg.DND == nil {
		return false
	}
	s.rmu.Lock()
	on, ok := s.dnd[user]
	s.rmu.Unlock()
	return on || (!ok && asterisk.State == DND)
}

// syncDNDLocked sets the DND device to match rec when it is known not to;
// BUSY only once the presence is in Asterisk (not pending). The user's
// lock is held.
func (s *Service) syncDNDLocked(ctx context.Context, user string, rec Record) {
	if s.cfg.DND == nil {
		return
	}
	want := rec.Current.State == DND && !rec.Pending
	s.rmu.Lock()
	on, ok := s.dnd[user]
	s.rmu.Unlock()
	if want && on || !want && (!on && ok || !ok && rec.Current.State != DND) {
		return // as it should be, or unknown and never dnd here
	}
	s.setDND(ctx, user, want)
}

// setDND sets the device and remembers what it holds; a failure leaves it
// unknown and is reported (the device is set again when ARI is back).
func (s *Service) setDND(ctx context.Context, user string, on bool) {
	err := s.cfg.DND.SetDND(ctx, user, on)
	s.rmu.Lock()
	if err == nil {
		s.dnd[user] = on
	} else {
		delete(s.dnd, user)
	}
	s.rmu.Unlock()
	if err != nil {
		s.backgroundFailed(user, fmt.Errorf("setting the DND device: %w", err))
	}
}

// queueDNDLocked has the DND worker set the user's device to match the
// presence; with force even if presenced never set it. rmu is held.
func (s *Service) queueDNDLocked(user string, force bool) {
	if s.cfg.DND == nil {
		return
	}
	s.dndDirty[user] = struct{}{}
	if force {
		s.dndForce[user] = struct{}{}
	}
	select {
	case s.dndWake <- struct{}{}:
	default:
	}
}

// markDND has the DND worker set the user's device again.
func (s *Service) markDND(user string) {
	s.rmu.Lock()
	delete(s.dnd, user)
	s.queueDNDLocked(user, false)
	s.rmu.Unlock()
}

// ReconcileDND sets the DND device of each of users to match their
// presence. With force, what presenced thought the devices held is
// forgotten and every one is set: after ARI (re)connects, since DND may
// have changed while ARI was away. Without, only devices presenced never
// set are: when hints start showing them (a never-set device reads
// UNKNOWN, which would hide an unregistered phone; INVALID does not).
func (s *Service) ReconcileDND(users []string, force bool) {
	if s.cfg.DND == nil {
		return
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for _, u := range users {
		if _, known := s.dnd[u]; known && !force {
			continue
		}
		delete(s.dnd, u)
		s.queueDNDLocked(u, true)
	}
}

// dndWorker sets the DND devices of users whose presence changed elsewhere
// or whose device is in doubt, one at a time, off the feeds' goroutines.
func (s *Service) dndWorker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.dndWake:
		case <-s.ctx.Done():
			return
		}
		s.rmu.Lock()
		users := make([]string, 0, len(s.dndDirty))
		for u := range s.dndDirty {
			users = append(users, u)
		}
		clear(s.dndDirty)
		s.rmu.Unlock()
		slices.Sort(users)
		for _, u := range users {
			if s.ctx.Err() != nil {
				return
			}
			unlock := s.lock(u)
			ctx, cancel := context.WithTimeout(s.ctx, backgroundTimeout)
			s.rmu.Lock()
			rec := s.recs[u]
			_, force := s.dndForce[u]
			delete(s.dndForce, u)
			s.rmu.Unlock()
			if force {
				s.setDND(ctx, u, rec.Current.State == DND && !rec.Pending)
			} else {
				s.syncDNDLocked(ctx, u, rec)
			}
			cancel()
			unlock()
		}
	}
}

// write sends rec.Current to Asterisk and confirms it by reading back, since
// Asterisk reports success for values it rejected.
func (s *Service) write(ctx context.Context, w Writer, user string, rec *Record) (uint64, error) {
	background := w == nil
	if background {
		w = s.cfg.Background
	}
	if w == nil {
		rec.Pending = true
		return 0, nil
	}
	provider := Provider(user)
	// The echo is expected before the write: it may come over AMI before
	// the read-back below has its answer.
	seq := s.expect(user, rec.Current)
	err := w.WritePresence(ctx, provider, Encode(rec.Current))
	var got Value
	if err == nil {
		got, err = w.ReadPresence(ctx, provider)
	}
	if err == nil && !got.Same(rec.Current) {
		err = Errorf(CodeAsteriskRejected, "Asterisk did not keep the presence of %s (it holds %s)", user, got.State)
	}
	if err != nil {
		s.unexpect(user, seq)
		if background && ErrorCode(err) == CodeUnavailable {
			rec.Pending = true
			return 0, nil
		}
		return 0, err
	}
	rec.Pending = false
	return seq, nil
}

// schedule arms (or, for a zero time, disarms) the user's expiry timer.
func (s *Service) schedule(user string, at time.Time) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	e, ok := s.timers[user]
	if ok && e.at.Equal(at) {
		return // already armed for that time (every hook of a timed user gets here)
	}
	if ok {
		e.timer.Stop()
		delete(s.timers, user)
	}
	if s.closed || at.IsZero() {
		return
	}
	s.timers[user] = expiry{at: at, timer: time.AfterFunc(at.Sub(s.cfg.Now()), func() { s.expire(user, at) })}
}

// expire ends a timed presence: back to the most recent remembered presence
// that has not ended itself.
func (s *Service) expire(user string, at time.Time) {
	s.tmu.Lock()
	if s.closed {
		s.tmu.Unlock()
		return
	}
	if e, ok := s.timers[user]; ok && e.at.Equal(at) {
		delete(s.timers, user) // this timer fired; a later schedule arms anew
	}
	s.wg.Add(1)
	s.tmu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithTimeout(s.ctx, backgroundTimeout)
	defer cancel()
	_, err := s.mutateAs(ctx, nil, user, func(r *Record, now time.Time) error {
		if !r.Current.Expired(now) {
			return errNotDue
		}
		if !restore(r, now, anyState) {
			r.Current = Value{}
		}
		return nil
	}, true)
	if err != nil && !errors.Is(err, errNotDue) {
		if ErrorCode(err) == CodeUnavailable {
			// The cluster away (its leader being elected): the timer is
			// tried again, and ends the presence once it is back.
			s.tmu.Lock()
			if _, armed := s.timers[user]; !armed && !s.closed {
				s.timers[user] = expiry{at: at, timer: time.AfterFunc(SaveRetry, func() { s.expire(user, at) })}
			}
			s.tmu.Unlock()
		}
		s.backgroundFailed(user, err)
	}
}

// backgroundFailed logs a failure of background work, which has no caller
// to return it to.
func (s *Service) backgroundFailed(user string, err error) {
	s.cfg.Log.Warn().Err(err).Str("user", user).Msg("background presence work failed; it is retried when Asterisk is back")
}

// userLock is one user's lock and how many operations hold or wait for it.
type userLock struct {
	held  chan struct{} // holds one token while the lock is taken
	users int           // guarded by Service.lmu
}

// lock takes the user's lock and returns its release.
func (s *Service) lock(user string) (unlock func()) {
	unlock, _ = s.lockWithin(context.Background(), user)
	return unlock
}

// lockWithin takes the user's lock, waiting while ctx lasts (a write's
// budget covers the wait for another operation on the user that waits
// on the cluster itself).
func (s *Service) lockWithin(ctx context.Context, user string) (unlock func(), err error) {
	s.lmu.Lock()
	l, ok := s.locks[user]
	if !ok {
		l = &userLock{held: make(chan struct{}, 1)}
		s.locks[user] = l
	}
	l.users++
	s.lmu.Unlock()
	done := func() {
		s.lmu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, user)
		}
		s.lmu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, WrapError(CodeUnavailable, ctx.Err(), "waiting for another operation on "+user)
	}
	return func() {
		<-l.held
		done()
	}, nil
}

// expiry is an armed timer of a timed presence.
type expiry struct {
	at    time.Time
	timer *time.Timer
}

// errUnchanged tells mutate that the operation has nothing to write.
var errUnchanged = errors.New("presence unchanged")

// errNotDue stops an expiry whose presence was replaced before the timer ran.
var errNotDue = errors.New("presence not due to expire")
