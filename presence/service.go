package presence

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// Record is what presenced remembers of one user: the presence it last
// wrote or saw, the earlier presences for restore (oldest first), and
// whether Current still has to be written to Asterisk.
type Record struct {
	Current Value   `json:"current"`
	History []Value `json:"history,omitempty"`
	Pending bool    `json:"pending,omitempty"`
}

// Store keeps records durably. The bbolt store in package store implements
// it. The service reads every record once, at Start, and then keeps them in
// memory: a hook costs one durable write and no read.
type Store interface {
	SaveRecord(ctx context.Context, user string, rec Record) error
	// Records returns every stored record.
	Records(ctx context.Context) (map[string]Record, error)
}

// Change is one visible change of a user's presence.
type Change struct {
	User     string
	Provider string
	Value    Value
	Previous Value
	// Timer is true when a timed presence ended, rather than a caller
	// asking for the change.
	Timer bool
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
	// OnChange is called after every visible change, under that user's
	// lock so that one user's changes arrive in order: it must return
	// quickly and must not call the service.
	OnChange func(Change)
	// OnError reports failures of background work (timers), which has no
	// caller to return them to.
	OnError func(user string, err error)
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

	tmu    sync.Mutex
	timers map[string]expiry
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
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
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, locks: map[string]*userLock{}, recs: map[string]Record{}, timers: map[string]expiry{}, ctx: ctx, cancel: cancel}, nil
}

// Start loads the stored records and arms a timer for every timed
// presence; those that ended while presenced was stopped revert at once.
// Call it before any operation.
func (s *Service) Start(ctx context.Context) error {
	recs, err := s.cfg.Store.Records(ctx)
	if err != nil {
		return WrapError(CodeInternal, err, "loading presence records")
	}
	s.rmu.Lock()
	s.recs = maps.Clone(recs)
	s.rmu.Unlock()
	for user, rec := range recs {
		s.schedule(user, rec.Current.Expires)
	}
	return nil
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

// Close stops the timers and waits for a running one to finish. Timed
// presence stays in the store and is re-armed by the next Start.
func (s *Service) Close() {
	s.tmu.Lock()
	s.closed = true
	for u, e := range s.timers {
		e.timer.Stop()
		delete(s.timers, u)
	}
	s.tmu.Unlock()
	s.cancel()
	s.wg.Wait()
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
		} else if !restore(r, now) {
			r.Current = Value{}
		}
		return nil
	})
}

// Restore returns the user to the presence before the current one, skipping
// timed presences that ended meanwhile. NOT_FOUND when nothing is left.
func (s *Service) Restore(ctx context.Context, w Writer, user string) (Value, error) {
	return s.mutate(ctx, w, user, func(r *Record, now time.Time) error {
		if !restore(r, now) {
			return Errorf(CodeNotFound, "there is no earlier presence of %s to restore", user)
		}
		return nil
	})
}

// Off ends state: if the user is in it, the presence before it comes back
// (not_set when nothing is remembered); otherwise nothing changes.
func (s *Service) Off(ctx context.Context, w Writer, user string, state State) (Value, error) {
	return s.mutate(ctx, w, user, func(r *Record, now time.Time) error {
		if r.Current.State != state {
			return errUnchanged
		}
		if !restore(r, now) {
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

// restore pops the most recent remembered presence that has not ended.
func restore(r *Record, now time.Time) bool {
	for len(r.History) > 0 {
		top := r.History[len(r.History)-1]
		r.History = r.History[:len(r.History)-1]
		if !top.Expired(now) {
			r.Current = top
			return true
		}
	}
	return false
}

// mutate is the one path of every operation: validate the user, lock it,
// take its record, learn what Asterisk holds now, apply op, write and
// confirm, store, re-arm the timer and announce, all under the user's lock
// so that changes of one user are announced in the order they happened.
// op nil means "read, and flush if pending"; w nil means a background
// operation.
func (s *Service) mutate(ctx context.Context, w Writer, user string, op func(*Record, time.Time) error) (Value, error) {
	if err := ValidateUser(user); err != nil {
		return Value{}, err
	}
	unlock := s.lock(user)
	defer unlock()
	rec := s.record(user)
	before := rec.Current
	dirty := false
	if w != nil && !rec.Pending {
		cur, err := w.ReadPresence(ctx, Provider(user))
		if err != nil {
			return Value{}, err
		}
		if !cur.Same(rec.Current) {
			// Changed outside presenced (a phone, the CLI, other dialplan):
			// that is the presence now, and it has no timer of ours.
			rec.Current = cur.Sanitize()
			dirty = true
		}
	}
	changed := false
	if op != nil {
		switch err := op(&rec, s.cfg.Now()); {
		case errors.Is(err, errUnchanged):
		case err != nil:
			return Value{}, err
		default:
			changed = true
		}
	}
	flush := rec.Pending && (w != nil || s.cfg.Background != nil)
	if !changed && !dirty && !flush {
		return rec.Current, nil
	}
	if changed || flush {
		if err := s.write(ctx, w, user, &rec); err != nil {
			return Value{}, err
		}
	}
	if err := s.cfg.Store.SaveRecord(ctx, user, rec); err != nil {
		return Value{}, WrapError(CodeInternal, err, "saving the presence record of "+user)
	}
	s.rmu.Lock()
	s.recs[user] = rec
	s.rmu.Unlock()
	s.schedule(user, rec.Current.Expires)
	if !before.Same(rec.Current) && s.cfg.OnChange != nil {
		s.cfg.OnChange(Change{User: user, Provider: Provider(user), Value: rec.Current, Previous: before, Timer: w == nil && changed})
	}
	return rec.Current, nil
}

// write sends rec.Current to Asterisk and confirms it by reading back, since
// Asterisk reports success for values it rejected.
func (s *Service) write(ctx context.Context, w Writer, user string, rec *Record) error {
	background := w == nil
	if background {
		w = s.cfg.Background
	}
	if w == nil {
		rec.Pending = true
		return nil
	}
	provider := Provider(user)
	err := w.WritePresence(ctx, provider, Encode(rec.Current))
	var got Value
	if err == nil {
		got, err = w.ReadPresence(ctx, provider)
	}
	if err != nil {
		if background && ErrorCode(err) == CodeUnavailable {
			rec.Pending = true
			return nil
		}
		return err
	}
	if !got.Same(rec.Current) {
		return Errorf(CodeAsteriskRejected, "Asterisk did not keep the presence of %s (it holds %s)", user, got.State)
	}
	rec.Pending = false
	return nil
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
	_, err := s.mutate(ctx, nil, user, func(r *Record, now time.Time) error {
		if !r.Current.Expired(now) {
			return errNotDue
		}
		if !restore(r, now) {
			r.Current = Value{}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNotDue) && s.cfg.OnError != nil {
		s.cfg.OnError(user, err)
	}
}

// userLock is one user's lock and how many operations hold or wait for it.
type userLock struct {
	mu    sync.Mutex
	users int // guarded by Service.lmu
}

// lock takes the user's lock and returns its release.
func (s *Service) lock(user string) (unlock func()) {
	s.lmu.Lock()
	l, ok := s.locks[user]
	if !ok {
		l = &userLock{}
		s.locks[user] = l
	}
	l.users++
	s.lmu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.lmu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, user)
		}
		s.lmu.Unlock()
	}
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
