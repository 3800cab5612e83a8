// Package forward is call forwarding per user, kept by presenced: three
// forwards (unconditional, on busy, on no answer), each on or off with a
// destination. Asterisk has no forwarding of its own to read: the dialplan
// asks presenced (the forward/get hook) before and after its Dial, and
// every view shows the forwards beside presence, so a forward is never
// invisible on the board.
package forward

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/internal/ratelimit"
)

// Kind is one of the three forwards.
type Kind int

// The forwards, in the order the dialplan applies them.
const (
	Unconditional Kind = iota
	Busy
	NoAnswer
)

var kindNames = [...]string{"unconditional", "busy", "noanswer"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// ParseKind reads a kind: "unconditional" (or "unc", "all"), "busy",
// "noanswer" (or "na", "no_answer"), in any case.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "unconditional", "unc", "all":
		return Unconditional, nil
	case "busy":
		return Busy, nil
	case "noanswer", "no_answer", "na":
		return NoAnswer, nil
	}
	return 0, presence.Errorf(presence.CodeInvalidArgument, "%q is not a forward (unconditional, busy, noanswer)", clip.Clip(s))
}

// Forward is one forward.
type Forward struct {
	Enabled bool `json:"enabled"`
	// Destination is a number (calls.ValidNumber): it is dialled by the
	// dialplan, so nothing else may be stored. Kept while the forward is
	// off, so that turning it on again needs no number.
	Destination string `json:"destination,omitempty"`
}

// Active returns the destination when the forward is on, else "".
func (f Forward) Active() string {
	if f.Enabled {
		return f.Destination
	}
	return ""
}

// Forwards is a user's three forwards.
type Forwards struct {
	User          string  `json:"user"`
	Unconditional Forward `json:"unconditional"`
	Busy          Forward `json:"busy"`
	NoAnswer      Forward `json:"noanswer"`
}

// Key is the user's name in the change log.
func (f Forwards) Key() string { return f.User }

// WithoutDestinations returns the forwards as a wall board may see them:
// on or off, without the numbers they go to (people's private numbers).
func (f Forwards) WithoutDestinations() Forwards {
	f.Unconditional.Destination, f.Busy.Destination, f.NoAnswer.Destination = "", "", ""
	return f
}

// Get returns one forward.
func (f Forwards) Get(k Kind) Forward {
	switch k {
	case Busy:
		return f.Busy
	case NoAnswer:
		return f.NoAnswer
	}
	return f.Unconditional
}

func (f *Forwards) set(k Kind, fw Forward) {
	switch k {
	case Busy:
		f.Busy = fw
	case NoAnswer:
		f.NoAnswer = fw
	default:
		f.Unconditional = fw
	}
}

// Any reports whether a forward is on.
func (f Forwards) Any() bool {
	return f.Unconditional.Enabled || f.Busy.Enabled || f.NoAnswer.Enabled
}

// Validate checks stored or received forwards: a valid user, and every
// destination a number the policy allows (nil: calls.DefaultPolicy); a
// forward on has one.
func (f Forwards) Validate(policy *calls.Policy) error {
	if err := presence.ValidateUser(f.User); err != nil {
		return err
	}
	for k := Unconditional; k <= NoAnswer; k++ {
		fw := f.Get(k)
		if fw.Destination != "" {
			if err := policy.Refuse("forward "+k.String()+" of "+f.User, fw.Destination); err != nil {
				return err
			}
		} else if fw.Enabled {
			return presence.Errorf(presence.CodeInvalidArgument, "forward %s of %s is on without a destination", k, f.User)
		}
	}
	return nil
}

// Store keeps every user's forwards durably (the bbolt store, or the
// cluster's bucket).
type Store interface {
	SaveForwards(ctx context.Context, f Forwards) error
	// AllForwards returns every user's stored forwards.
	AllForwards(ctx context.Context) ([]Forwards, error)
}

// Config configures a Service.
type Config struct {
	Store Store
	// Policy is what forwards may go to (nil: calls.DefaultPolicy): the
	// same as click to dial's, as the dialplan dials them.
	Policy *calls.Policy
	// Log gets the audit line of every change asked for, from every way
	// in (who, from actor.From, the user, the forward, the number).
	Log zerolog.Logger
	// Sink gets every change (ChangeKind), after the service's locks are
	// released, with versions in the order made, and every stored user's
	// forwards at Open.
	Sink change.Sink
	// ChangeLog, when set, is waited for by every change: Set answers once
	// the change is in the log (UNAVAILABLE when the log cannot take it;
	// the change is kept, and logged once the log is back).
	ChangeLog change.Logged
	// Budget bounds how long a change waits for the store (in a cluster,
	// the cluster) and the change log, as presence.Config.Budget does
	// (0: as long as the caller allows).
	Budget time.Duration
}

// ChangeKind is the kind of change of a user's forwards (its number is
// in the change log: never reuse it).
const ChangeKind change.Kind = 5

// Kinds are the codecs of the changes of forwards.
func Kinds() []change.Codec { return []change.Codec{change.JSON[Forwards](ChangeKind, "forward")} }

// Service keeps the forwards in memory, written through to the Store.
type Service struct {
	cfg Config
	// Limits of changes: per user, and per token, login or channel.
	limits *ratelimit.Pair
	// wmu orders the changes (each reads, stores, then announces); mu
	// guards the map only, so that a read (the forward/get hook, on every
	// call) never waits for a change's store.
	wmu     sync.Mutex
	mu      sync.Mutex
	by      map[string]Forwards
	version uint64 // orders the changes announced; mu is held
}

// The limits of forward changes: a user's forwards change at most
// changeBurst times at once, then once every changeEvery; a token or
// login ten times that (ratelimit.Pair).
const (
	changeEvery = 3 * time.Second
	changeBurst = 10
)

// NewService returns a service; Open loads it.
func NewService(cfg Config) *Service {
	if cfg.Sink == nil {
		cfg.Sink = change.Discard{}
	}
	return &Service{cfg: cfg, by: map[string]Forwards{}, limits: ratelimit.NewPair(changeEvery, changeBurst)}
}

// Open reads the stored forwards and announces them.
func (s *Service) Open(ctx context.Context) error {
	all, err := s.cfg.Store.AllForwards(ctx)
	if err != nil {
		return fmt.Errorf("reading the stored call forwards: %w", err)
	}
	s.mu.Lock()
	var out []change.Change
	for _, f := range all {
		if f.Validate(s.cfg.Policy) != nil {
			continue // written by nothing presenced runs, or refused by today's policy: never dialled
		}
		s.by[f.User] = f
		out = append(out, s.change(f))
	}
	s.mu.Unlock()
	s.cfg.Sink.Append(out...)
	return nil
}

// change makes f, just kept, a change with the next version; s.mu is
// held, so that versions follow the order the changes were made in.
func (s *Service) change(f Forwards) change.Change {
	s.version++
	return change.Change{Kind: ChangeKind, Key: f.Key(), Version: s.version, Value: f, Source: "forward"}
}

// Get returns a user's forwards (all off when none were ever set).
func (s *Service) Get(user string) Forwards {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.by[user]; ok {
		return f
	}
	return Forwards{User: user}
}

// All returns every user's forwards that were ever set.
func (s *Service) All() []Forwards {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Forwards, 0, len(s.by))
	for _, f := range s.by {
		out = append(out, f)
	}
	return out
}

// ErrNoDestination is turning a forward on that never had a destination.
var ErrNoDestination = errors.New("no destination")

// Set turns one forward of a user on or off. An empty destination keeps
// the one the forward had; turning on a forward that never had one is an
// error. Nothing changes on an error; the change is stored before it is
// announced.
func (s *Service) Set(ctx context.Context, user string, k Kind, on bool, destination string) (Forwards, error) {
	a := actor.From(ctx)
	if s.cfg.Budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Budget)
		defer cancel()
	}
	f, cs, err := s.set(ctx, a, user, k, on, destination)
	// Announced once the locks are released.
	s.cfg.Sink.Append(cs...)
	if len(cs) > 0 && err == nil && s.cfg.ChangeLog != nil {
		if lerr := s.cfg.ChangeLog.Sync(ctx); lerr != nil {
			err = presence.ErrChangeLog(lerr)
		}
	}
	dest := destination
	if err == nil && dest == "" {
		dest = f.Get(k).Destination
	}
	s.cfg.Log.Info().Str("door", a.Door).Str("actor", a.Name).Str("remote", a.Remote).Str("user", clip.Clip(user)).
		Str("forward", k.String()).Bool("on", on).Str("number", clip.Clip(dest)).Str("result", presence.Result(err)).Msg("forward change")
	return f, err
}

func (s *Service) set(ctx context.Context, a actor.Actor, user string, k Kind, on bool, destination string) (Forwards, []change.Change, error) {
	if err := presence.ValidateUser(user); err != nil {
		return Forwards{}, nil, err
	}
	if k < Unconditional || k > NoAnswer {
		return Forwards{}, nil, presence.Errorf(presence.CodeInvalidArgument, "forward kind %d", int(k))
	}
	if destination != "" {
		if err := s.cfg.Policy.Refuse("forward "+k.String()+" of "+user, destination); err != nil {
			return Forwards{}, nil, err
		}
	}
	if err := s.limits.Check(a.String(), user, "forward changes"); err != nil {
		return Forwards{}, nil, presence.WrapError(presence.CodeRateLimited, err, err.Error())
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	f, ok := s.by[user]
	s.mu.Unlock()
	if !ok {
		f = Forwards{User: user}
	}
	fw := f.Get(k)
	if destination != "" {
		fw.Destination = destination
	}
	if on && fw.Destination == "" {
		return Forwards{}, nil, presence.WrapError(presence.CodeInvalidArgument, ErrNoDestination, "forward "+k.String()+" of "+user+" has no destination to turn on")
	}
	if on {
		// The kept destination was allowed when set; the policy may
		// have narrowed since.
		if err := s.cfg.Policy.Refuse("forward "+k.String()+" of "+user, fw.Destination); err != nil {
			return Forwards{}, nil, err
		}
	}
	fw.Enabled = on
	if ok && f.Get(k) == fw {
		return f, nil, nil // no change: nothing stored, nothing announced
	}
	f.set(k, fw)
	if err := s.cfg.Store.SaveForwards(ctx, f); err != nil {
		return Forwards{}, nil, presence.WrapError(presence.CodeUnavailable, err, "storing the forwards of "+user)
	}
	s.mu.Lock()
	s.by[user] = f
	c := s.change(f)
	s.mu.Unlock()
	return f, []change.Change{c}, nil
}

// Changed takes a change made elsewhere (another node of a cluster, read
// from the shared bucket): kept, not announced (the node that made it
// logged it). It is checked as a change made here is: forwards a rogue
// writer planted in the bucket, or that this node's policy refuses, are
// not kept, so never dialled.
func (s *Service) Changed(f Forwards) {
	if err := f.Validate(s.cfg.Policy); err != nil {
		s.cfg.Log.Warn().Err(err).Str("user", clip.Clip(f.User)).Msg("forwards from the cluster refused")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.by[f.User] = f
}
