package forward

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/ratelimit"
)

// memStore is a Store in memory, whose saves can be made to fail.
type memStore struct {
	mu   sync.Mutex
	by   map[string]Forwards
	fail error
}

func (m *memStore) SaveForwards(_ context.Context, f Forwards) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.by == nil {
		m.by = map[string]Forwards{}
	}
	m.by[f.User] = f
	return nil
}

func (m *memStore) AllForwards(context.Context) ([]Forwards, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Forwards
	for _, f := range m.by {
		out = append(out, f)
	}
	return out, nil
}

func TestSetSemantics(t *testing.T) {
	type step struct {
		kind  string
		on    bool
		dest  string
		code  presence.Code // "" = OK
		after Forwards      // user 1001's forwards after the step
	}
	u := "1001"
	steps := []step{
		{"busy", true, "", presence.CodeInvalidArgument, Forwards{User: u}}, // nothing to turn on
		{"unconditional", true, "0612345678", "", Forwards{User: u, Unconditional: Forward{true, "0612345678"}}},
		{"UNC", false, "", "", Forwards{User: u, Unconditional: Forward{false, "0612345678"}}}, // off keeps the number
		{"all", true, "", "", Forwards{User: u, Unconditional: Forward{true, "0612345678"}}},   // on again, same number
		{"na", true, "+33427466347", "", Forwards{User: u, Unconditional: Forward{true, "0612345678"}, NoAnswer: Forward{true, "+33427466347"}}},
		{"busy", false, "2002", "", Forwards{User: u, Unconditional: Forward{true, "0612345678"}, Busy: Forward{false, "2002"}, NoAnswer: Forward{true, "+33427466347"}}},
		// Hostile destinations never get stored.
		{"busy", true, "${SHELL(id)}", presence.CodeInvalidArgument, Forwards{User: u, Unconditional: Forward{true, "0612345678"}, Busy: Forward{false, "2002"}, NoAnswer: Forward{true, "+33427466347"}}},
		{"busy", true, "1001&PJSIP/evil", presence.CodeInvalidArgument, Forwards{User: u, Unconditional: Forward{true, "0612345678"}, Busy: Forward{false, "2002"}, NoAnswer: Forward{true, "+33427466347"}}},
		{"busy", true, "2002\r\nAction: Originate", presence.CodeInvalidArgument, Forwards{User: u, Unconditional: Forward{true, "0612345678"}, Busy: Forward{false, "2002"}, NoAnswer: Forward{true, "+33427466347"}}},
		{"busy", true, "06 12 34 56 78", presence.CodeInvalidArgument, Forwards{User: u, Unconditional: Forward{true, "0612345678"}, Busy: Forward{false, "2002"}, NoAnswer: Forward{true, "+33427466347"}}},
		{"sometimes", true, "2002", presence.CodeInvalidArgument, Forwards{User: u, Unconditional: Forward{true, "0612345678"}, Busy: Forward{false, "2002"}, NoAnswer: Forward{true, "+33427466347"}}},
	}
	st := &memStore{}
	var announced []Forwards
	s := NewService(Config{Store: st, Sink: forwardsTo(&announced)})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	changes := 0
	for i, sp := range steps {
		before := s.Get(u)
		k, err := ParseKind(sp.kind)
		if err == nil {
			_, err = s.Set(context.Background(), u, k, sp.on, sp.dest)
		}
		if got := presence.ErrorCode(err); (sp.code == "" && err != nil) || (sp.code != "" && got != sp.code) {
			t.Fatalf("step %d: error %v, want code %q", i, err, sp.code)
		}
		if got := s.Get(u); got != sp.after {
			t.Fatalf("step %d: %+v, want %+v", i, got, sp.after)
		}
		if s.Get(u) != before {
			changes++
		}
		if len(announced) != changes || (changes > 0 && announced[changes-1] != sp.after) {
			t.Fatalf("step %d: announced %d, want %d", i, len(announced), changes)
		}
		if err := st.by[u].Validate(nil); changes > 0 && (err != nil || st.by[u] != sp.after) {
			t.Fatalf("step %d: stored %+v (%v)", i, st.by[u], err)
		}
	}
	// A repeat is no change: nothing stored or announced again.
	if _, err := s.Set(context.Background(), u, Unconditional, true, "0612345678"); err != nil || len(announced) != changes {
		t.Fatalf("repeat: %v, %d announcements", err, len(announced))
	}
	// A bad user is refused before anything.
	if _, err := s.Set(context.Background(), "1001&PJSIP/x", Busy, true, "2002"); presence.ErrorCode(err) != presence.CodeInvalidUser {
		t.Fatalf("bad user: %v", err)
	}
	// A store that fails changes nothing.
	st.fail = errors.New("disk full")
	if _, err := s.Set(context.Background(), u, Busy, true, ""); presence.ErrorCode(err) != presence.CodeUnavailable {
		t.Fatalf("failing store: %v", err)
	}
	if s.Get(u).Busy.Enabled || len(announced) != changes {
		t.Fatal("a failed save changed the forwards")
	}
	st.fail = nil
	// Reopened from the store: the same forwards, announced once each.
	var again []Forwards
	s2 := NewService(Config{Store: st, Sink: forwardsTo(&again)})
	if err := s2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s2.Get(u) != s.Get(u) || len(again) != 1 {
		t.Fatalf("reopened: %+v, %d announced", s2.Get(u), len(again))
	}
}

// Forwards stored by something else with a hostile destination are never
// taken (nor dialled).
func TestOpenSkipsInvalid(t *testing.T) {
	st := &memStore{by: map[string]Forwards{"1001": {User: "1001", Busy: Forward{true, "${SHELL(id)}"}}, "1002": {User: "1002", Busy: Forward{true, "2002"}}}}
	s := NewService(Config{Store: st})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Get("1001").Busy.Enabled || s.Get("1002").Busy.Active() != "2002" {
		t.Fatalf("%+v %+v", s.Get("1001"), s.Get("1002"))
	}
	s.Changed(Forwards{User: "1002", Busy: Forward{true, "x"}})
	if s.Get("1002").Busy.Active() != "2002" {
		t.Fatal("an invalid change from elsewhere was taken")
	}
	s.Changed(Forwards{User: "1002", NoAnswer: Forward{true, "3003"}})
	if s.Get("1002").NoAnswer.Active() != "3003" || s.Get("1002").Busy.Enabled {
		t.Fatalf("change from elsewhere: %+v", s.Get("1002"))
	}
}

func FuzzParseKind(f *testing.F) {
	for _, s := range []string{"unconditional", "BUSY", "na", "", "x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKind(s)
		if err == nil {
			if k2, err := ParseKind(k.String()); err != nil || k2 != k {
				t.Fatalf("%q -> %v -> %v %v", s, k, k2, err)
			}
		}
	})
}

// The dial policy holds for forwards from every way in: feature codes are
// refused, forwards planted by another writer (the cluster's bucket) or
// refused by a narrower policy are never kept, every change asked for
// writes an audit line, and changes are limited per user and per token.
func TestForwardPolicy(t *testing.T) {
	var audit strings.Builder
	policy, err := calls.ParsePolicy("", "_00.")
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{by: map[string]Forwards{
		"1001": {User: "1001", Busy: Forward{true, "0041441234567"}}, // allowed once, denied now
		"1002": {User: "1002", Busy: Forward{true, "2002"}},
	}}
	s := NewService(Config{Store: st, Policy: policy, Log: zerolog.New(&audit)})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Get("1001").Busy.Enabled || s.Get("1002").Busy.Active() != "2002" {
		t.Fatalf("at open: %+v %+v", s.Get("1001"), s.Get("1002"))
	}
	ctx := actor.With(context.Background(), actor.Actor{Door: "xuc", Name: "alice", Remote: "127.0.0.1:4000"})
	for _, dest := range []string{"*721001", "*78", "#", "0041441234567"} {
		if _, err := s.Set(ctx, "1002", Unconditional, true, dest); presence.ErrorCode(err) != presence.CodeNotAllowed {
			t.Errorf("forward to %q: %v, want NOT_ALLOWED", dest, err)
		}
	}
	if s.Get("1002").Unconditional != (Forward{}) {
		t.Fatalf("a refused forward was kept: %+v", s.Get("1002"))
	}
	// Planted in the cluster's bucket: a feature code, a denied number.
	s.Changed(Forwards{User: "1002", Unconditional: Forward{true, "*721001"}})
	s.Changed(Forwards{User: "1002", Unconditional: Forward{true, "0041441234567"}})
	if s.Get("1002").Unconditional.Enabled {
		t.Fatalf("a planted forward was kept: %+v", s.Get("1002"))
	}
	if _, err := s.Set(ctx, "1002", NoAnswer, true, "1003"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{`"door":"xuc"`, `"actor":"alice"`, `"remote":"127.0.0.1:4000"`, `"user":"1002"`, `"forward":"noanswer"`, `"number":"1003"`, `"result":"ok"`} {
		if !strings.Contains(last, want) {
			t.Fatalf("audit line %s lacks %s", last, want)
		}
	}
	if !strings.Contains(audit.String(), `"number":"*721001","result":"NOT_ALLOWED"`) {
		t.Fatalf("a refused change has no audit line:\n%s", audit.String())
	}
	// Limits: one user's forwards, then one token's across users.
	var limited error
	for range changeBurst + 1 {
		if _, err := s.Set(ctx, "1003", Busy, true, "2002"); err != nil {
			limited = err
		}
	}
	if presence.ErrorCode(limited) != presence.CodeRateLimited {
		t.Fatalf("changes of one user were not limited: %v", limited)
	}
	limited = nil
	other := actor.With(context.Background(), actor.Actor{Door: "http", Name: "crm"})
	for i := range changeBurst*10 + 1 {
		if _, err := s.Set(other, fmt.Sprintf("2%03d", i), Busy, true, "2002"); err != nil {
			limited = err
		}
	}
	if _, ok := ratelimit.RetryAfter(limited); !ok || presence.ErrorCode(limited) != presence.CodeRateLimited {
		t.Fatalf("changes of one token across users were not limited: %v", limited)
	}
}

// forwardsTo is a sink that keeps the forwards of the changes it gets.
func forwardsTo(out *[]Forwards) change.Sink {
	return change.SinkFunc(func(cs ...change.Change) {
		for _, c := range cs {
			*out = append(*out, c.Value.(Forwards))
		}
	})
}

// syncLog is a change log whose Sync notes that it was asked, after the
// change it covers, and fails when told to.
type syncLog struct {
	steps []string
	fail  error
}

func (l *syncLog) Append(cs ...change.Change) {
	for range cs {
		l.steps = append(l.steps, "change")
	}
}

func (l *syncLog) Sync(context.Context) error {
	l.steps = append(l.steps, "sync")
	return l.fail
}

// A change answers once it is in the change log; one that changes
// nothing does not wait; a log that cannot take it makes the change
// UNAVAILABLE, kept all the same (logged once the log is back).
func TestSetWaitsForTheChangeLog(t *testing.T) {
	log := &syncLog{}
	s := NewService(Config{Store: &memStore{}, Sink: log, ChangeLog: log, Log: zerolog.Nop()})
	ctx := context.Background()
	if _, err := s.Set(ctx, "1001", Busy, true, "2002"); err != nil || strings.Join(log.steps, ",") != "change,sync" {
		t.Fatalf("a change: %v, %v", err, log.steps)
	}
	log.steps = nil
	if _, err := s.Set(ctx, "1001", Busy, true, ""); err != nil || len(log.steps) != 0 {
		t.Fatalf("no change: %v, %v", err, log.steps)
	}
	log.fail = errors.New("no leader")
	_, err := s.Set(ctx, "1001", Busy, false, "")
	if presence.ErrorCode(err) != presence.CodeUnavailable || strings.Join(log.steps, ",") != "change,sync" {
		t.Fatalf("the log away: %v, %v", err, log.steps)
	}
	if s.Get("1001").Busy.Enabled {
		t.Fatal("the change the log did not take was not kept")
	}
}
