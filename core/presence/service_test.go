package presence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/astemu"
)

// memStore is an in-memory presence.Store.
type memStore struct {
	mu   sync.Mutex
	recs map[string]presence.Record
}

func newMemStore() *memStore { return &memStore{recs: map[string]presence.Record{}} }

func (m *memStore) LoadRecord(_ context.Context, user string) (presence.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[user]
	r.History = append([]presence.Value(nil), r.History...)
	return r, ok, nil
}

func (m *memStore) SaveRecord(_ context.Context, user string, rec presence.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.History = append([]presence.Value(nil), rec.History...)
	m.recs[user] = rec
	return nil
}

func (m *memStore) Records(context.Context) (map[string]presence.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]presence.Record{}
	for k, v := range m.recs {
		out[k] = v
	}
	return out, nil
}

type fixture struct {
	t       *testing.T
	ast     *astemu.Asterisk
	ch      presence.Writer
	store   *memStore
	svc     *presence.Service
	changes []presence.Change
	mu      sync.Mutex
}

func newFixture(t *testing.T, background bool) *fixture {
	f := &fixture{t: t, ast: astemu.New(), store: newMemStore()}
	f.ch = presence.VariableWriter{Channel: astemu.NewChannel(f.ast)}
	f.start(background)
	return f
}

func (f *fixture) start(background bool) {
	cfg := presence.Config{Store: f.store, Listener: presence.ListenerFunc(func(c presence.Change) {
		f.mu.Lock()
		f.changes = append(f.changes, c)
		f.mu.Unlock()
	})}
	if background {
		cfg.Background = f.ch
	}
	svc, err := presence.NewService(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := svc.Open(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.svc = svc
	f.t.Cleanup(func() { _ = svc.Close() })
}

// asterisk returns the state Asterisk holds for user.
func (f *fixture) asterisk(user string) string {
	v, _ := f.ast.ReadFunction("PRESENCE_STATE(CustomPresence:" + user + ",value)")
	return v
}

func (f *fixture) do(name string, got presence.Value, err error, want presence.State) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	if got.State != want {
		f.t.Fatalf("%s: state %v, want %v", name, got.State, want)
	}
}

func set(s presence.State) presence.Value { return presence.Value{State: s} }

var ctx = context.Background()

func TestRestoreChain(t *testing.T) {
	f := newFixture(t, false)
	for _, st := range []presence.State{presence.Available, presence.Away, presence.DND} {
		got, err := f.svc.Set(ctx, f.ch, "1001", presence.Value{State: st, Message: "m " + st.String()})
		f.do("set", got, err, st)
	}
	if f.asterisk("1001") != "dnd" {
		t.Fatalf("Asterisk holds %q", f.asterisk("1001"))
	}
	for _, want := range []presence.State{presence.Away, presence.Available, presence.NotSet} {
		got, err := f.svc.Restore(ctx, f.ch, "1001")
		f.do("restore", got, err, want)
		if f.asterisk("1001") != want.String() {
			t.Fatalf("Asterisk holds %q, want %v", f.asterisk("1001"), want)
		}
	}
	if got, err := f.svc.Restore(ctx, f.ch, "1001"); presence.ErrorCode(err) != presence.CodeNotFound {
		t.Fatalf("restore with nothing left = %v, %v; want NOT_FOUND", got, err)
	}
	msg, _ := f.ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message)")
	if msg != "" {
		t.Fatalf("message after restoring to not_set = %q", msg)
	}
}

func TestSetSameTwiceNeedsOneRestore(t *testing.T) {
	f := newFixture(t, false)
	got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Available))
	f.do("set", got, err, presence.Available)
	for range 2 {
		got, err = f.svc.Set(ctx, f.ch, "1001", set(presence.Away))
		f.do("set", got, err, presence.Away)
	}
	got, err = f.svc.Restore(ctx, f.ch, "1001")
	f.do("restore", got, err, presence.Available)
}

func TestToggle(t *testing.T) {
	f := newFixture(t, false)
	got, err := f.svc.Toggle(ctx, f.ch, "1001", set(presence.DND))
	f.do("toggle on", got, err, presence.DND)
	got, err = f.svc.Toggle(ctx, f.ch, "1001", set(presence.DND))
	f.do("toggle off", got, err, presence.NotSet)
	// Off of a state the user is not in changes nothing.
	got, err = f.svc.Set(ctx, f.ch, "1001", set(presence.Chat))
	f.do("set", got, err, presence.Chat)
	got, err = f.svc.Off(ctx, f.ch, "1001", presence.DND)
	f.do("off", got, err, presence.Chat)
}

// The scenario of the issue: toggling DND during a timed "away" comes back
// to "away", then the timer returns to what was before.
func TestDNDDuringTimedAway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, true)
		got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Available))
		f.do("available", got, err, presence.Available)
		away := presence.Value{State: presence.Away, Message: "meeting", Expires: time.Now().Add(time.Hour)}
		got, err = f.svc.Set(ctx, f.ch, "1001", away)
		f.do("timed away", got, err, presence.Away)
		time.Sleep(10 * time.Minute)
		got, err = f.svc.Toggle(ctx, f.ch, "1001", set(presence.DND))
		f.do("dnd on", got, err, presence.DND)
		time.Sleep(10 * time.Minute)
		got, err = f.svc.Toggle(ctx, f.ch, "1001", set(presence.DND))
		f.do("dnd off", got, err, presence.Away)
		if !got.Expires.Equal(away.Expires) {
			t.Fatalf("away came back with expiry %v, want %v", got.Expires, away.Expires)
		}
		time.Sleep(40*time.Minute + time.Second)
		synctest.Wait()
		if f.asterisk("1001") != "available" {
			t.Fatalf("after the hour Asterisk holds %q, want available", f.asterisk("1001"))
		}
		got, err = f.svc.Get(ctx, nil, "1001")
		f.do("get", got, err, presence.Available)
	})
}

// A timed presence that ends while buried under DND is skipped when DND ends.
func TestTimedPresenceEndsWhileBuried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, true)
		got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Available))
		f.do("available", got, err, presence.Available)
		got, err = f.svc.Set(ctx, f.ch, "1001", presence.Value{State: presence.Away, Expires: time.Now().Add(time.Hour)})
		f.do("timed away", got, err, presence.Away)
		got, err = f.svc.Set(ctx, f.ch, "1001", set(presence.DND))
		f.do("dnd", got, err, presence.DND)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if f.asterisk("1001") != "dnd" {
			t.Fatalf("DND was ended by the buried timer: %q", f.asterisk("1001"))
		}
		got, err = f.svc.Restore(ctx, f.ch, "1001")
		f.do("restore", got, err, presence.Available)
	})
}

// Without a background writer an ended timed presence waits as a pending
// write, and the user's next hook applies it.
func TestExpiryWithoutWriterIsPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, false)
		got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Chat))
		f.do("chat", got, err, presence.Chat)
		got, err = f.svc.Set(ctx, f.ch, "1001", presence.Value{State: presence.XA, Expires: time.Now().Add(30 * time.Minute)})
		f.do("timed xa", got, err, presence.XA)
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		rec, _, _ := f.store.LoadRecord(ctx, "1001")
		if !rec.Pending || rec.Current.State != presence.Chat || f.asterisk("1001") != "xa" {
			t.Fatalf("record %+v, Asterisk %q; want pending chat, Asterisk still xa", rec, f.asterisk("1001"))
		}
		got, err = f.svc.Get(ctx, f.ch, "1001")
		f.do("get", got, err, presence.Chat)
		if f.asterisk("1001") != "chat" {
			t.Fatalf("pending write not applied: Asterisk holds %q", f.asterisk("1001"))
		}
	})
}

// Timed presence and the restore memory survive a restart of the service.
func TestTimersSurviveRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, true)
		got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Available))
		f.do("available", got, err, presence.Available)
		got, err = f.svc.Set(ctx, f.ch, "1001", presence.Value{State: presence.Away, Expires: time.Now().Add(time.Hour)})
		f.do("timed away", got, err, presence.Away)
		got, err = f.svc.Set(ctx, f.ch, "1002", presence.Value{State: presence.Away, Expires: time.Now().Add(time.Minute)})
		f.do("timed away 1002", got, err, presence.Away)
		f.svc.Close()
		time.Sleep(30 * time.Minute) // 1002 ends while the service is down
		f.start(true)
		synctest.Wait()
		if f.asterisk("1002") != "not_set" {
			t.Fatalf("1002 not reverted at start: %q", f.asterisk("1002"))
		}
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		if f.asterisk("1001") != "available" {
			t.Fatalf("1001 not reverted after restart: %q", f.asterisk("1001"))
		}
	})
}

func TestRejectedWriteChangesNothing(t *testing.T) {
	f := newFixture(t, false)
	got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Away))
	f.do("away", got, err, presence.Away)
	f.ast.RejectPresence = true
	_, err = f.svc.Set(ctx, f.ch, "1001", set(presence.DND))
	if presence.ErrorCode(err) != presence.CodeAsteriskRejected {
		t.Fatalf("err = %v, want ASTERISK_REJECTED", err)
	}
	f.ast.RejectPresence = false
	rec, _, _ := f.store.LoadRecord(ctx, "1001")
	if rec.Current.State != presence.Away || len(rec.History) != 1 {
		t.Fatalf("record changed by a rejected write: %+v", rec)
	}
	if len(f.changes) != 1 {
		t.Fatalf("changes announced: %+v", f.changes)
	}
}

func TestNoPresenceFunctionIsUnavailable(t *testing.T) {
	f := newFixture(t, false)
	f.ast.NoPresenceFunc = true
	_, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Away))
	if presence.ErrorCode(err) != presence.CodeUnavailable {
		t.Fatalf("err = %v, want UNAVAILABLE", err)
	}
}

func TestInvalidInputWritesNothing(t *testing.T) {
	f := newFixture(t, false)
	bad := []struct {
		user string
		v    presence.Value
		want presence.Code
	}{
		{"1001", presence.Value{State: presence.Away, Message: strings.Repeat("x", 256)}, presence.CodeTooLong},
		{"1001", presence.Value{State: presence.Away, Subtype: "\xc3\x28"}, presence.CodeInvalidText},
		{"10 01", set(presence.Away), presence.CodeInvalidUser},
		{"1001),x", set(presence.Away), presence.CodeInvalidUser},
	}
	for _, b := range bad {
		if _, err := f.svc.Set(ctx, f.ch, b.user, b.v); presence.ErrorCode(err) != b.want {
			t.Errorf("Set(%q, %+v) = %v, want %s", b.user, b.v, err, b.want)
		}
	}
	if _, ok := f.ast.DBGet("CustomPresence", "1001"); ok {
		t.Fatal("something was written")
	}
	if recs, _ := f.store.Records(ctx); len(recs) != 0 {
		t.Fatalf("records written: %v", recs)
	}
}

// A change made outside presenced (here straight into Asterisk) is what the
// next hook sees, and what restore returns to.
func TestExternalChangeIsAdopted(t *testing.T) {
	f := newFixture(t, false)
	got, err := f.svc.Set(ctx, f.ch, "1001", set(presence.Available))
	f.do("available", got, err, presence.Available)
	f.ast.WriteFunction("PRESENCE_STATE(CustomPresence:1001)", "chat,,free to talk")
	got, err = f.svc.Get(ctx, f.ch, "1001")
	f.do("get", got, err, presence.Chat)
	if got.Message != "free to talk" {
		t.Fatalf("message %q", got.Message)
	}
	got, err = f.svc.Set(ctx, f.ch, "1001", set(presence.DND))
	f.do("dnd", got, err, presence.DND)
	got, err = f.svc.Restore(ctx, f.ch, "1001")
	f.do("restore", got, err, presence.Chat)
}

func TestHistoryIsBounded(t *testing.T) {
	store := newMemStore()
	svc, _ := presence.NewService(presence.Config{Store: store, MaxHistory: 3})
	if err := svc.Open(ctx); err != nil {
		t.Fatal(err)
	}
	ch := presence.VariableWriter{Channel: astemu.NewChannel(astemu.New())}
	for i := range 10 {
		if _, err := svc.Set(ctx, ch, "1001", presence.Value{State: presence.States()[i%7], Message: strings.Repeat("m", i)}); err != nil {
			t.Fatal(err)
		}
	}
	rec, _, _ := store.LoadRecord(ctx, "1001")
	if len(rec.History) != 3 {
		t.Fatalf("history length %d, want 3", len(rec.History))
	}
}

// blockingWriter holds every read until release is closed.
type blockingWriter struct {
	presence.Writer
	entered chan struct{}
	release chan struct{}
}

func (b blockingWriter) ReadPresence(ctx context.Context, provider string) (presence.Value, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return b.Writer.ReadPresence(ctx, provider)
}

// One user's hook waits for nobody else's: with one user's operation stuck
// in Asterisk, every other user's goes through (with lock stripes, some
// of these 200 users would share the stuck user's stripe).
func TestOneUserDoesNotWaitForAnother(t *testing.T) {
	f := newFixture(t, false)
	stuck := blockingWriter{Writer: f.ch, entered: make(chan struct{}, 1), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Set(context.Background(), stuck, "1001", presence.Value{State: presence.Away})
		done <- err
	}()
	<-stuck.entered
	for i := range 200 {
		user := "2" + strings.Repeat("0", 3-len(itoa(i))) + itoa(i)
		if _, err := f.svc.Set(context.Background(), f.ch, user, presence.Value{State: presence.DND}); err != nil {
			t.Fatal(err)
		}
	}
	close(stuck.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// failingStore refuses saves while full is set, as a full disk does.
type failingStore struct {
	*memStore
	mu   sync.Mutex
	full bool
}

func (f *failingStore) SaveRecord(ctx context.Context, user string, rec presence.Record) error {
	f.mu.Lock()
	full := f.full
	f.mu.Unlock()
	if full {
		return errors.New("write presenced.db: no space left on device")
	}
	return f.memStore.SaveRecord(ctx, user, rec)
}

// A full disk during a write: Asterisk took the presence, so presenced's
// view, its restore memory and the watchers follow Asterisk (the caller
// hears INTERNAL); the record reaches the store once the disk has space.
func TestFullDiskLeavesPresencedAndAsteriskAgreeing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ast := astemu.New()
		ch := presence.VariableWriter{Channel: astemu.NewChannel(ast)}
		st := &failingStore{memStore: newMemStore()}
		var changes []presence.Change
		var mu sync.Mutex
		svc, err := presence.NewService(presence.Config{Store: st, Listener: presence.ListenerFunc(func(c presence.Change) {
			mu.Lock()
			changes = append(changes, c)
			mu.Unlock()
		})})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Open(ctx); err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		if _, err := svc.Set(ctx, ch, "1001", presence.Value{State: presence.Available}); err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		st.full = true
		st.mu.Unlock()
		_, err = svc.Set(ctx, ch, "1001", presence.Value{State: presence.DND, Message: "disk full"})
		if presence.ErrorCode(err) != presence.CodeInternal {
			t.Fatalf("err %v", err)
		}
		if v, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,value)"); v != "dnd" {
			t.Fatalf("Asterisk holds %s", v)
		}
		if v, _, _ := svc.Lookup("1001"); v.State != presence.DND {
			t.Fatalf("presenced shows %s while Asterisk holds dnd", v.State)
		}
		mu.Lock()
		last := changes[len(changes)-1]
		mu.Unlock()
		if last.Value.State != presence.DND {
			t.Fatalf("watchers were told %s", last.Value.State)
		}
		// The restore memory built on it: restore goes back to available.
		if v, err := svc.Restore(ctx, ch, "1001"); presence.ErrorCode(err) != presence.CodeInternal || v.State != presence.NotSet {
			t.Fatalf("restore with the disk full: %v %v", v, err)
		}
		if v, _, _ := svc.Lookup("1001"); v.State != presence.Available {
			t.Fatalf("after restore presenced shows %s", v.State)
		}
		st.mu.Lock()
		st.full = false
		st.mu.Unlock()
		time.Sleep(presence.SaveRetry + time.Second)
		synctest.Wait()
		recs, _ := st.Records(ctx)
		if recs["1001"].Current.State != presence.Available {
			t.Fatalf("the store holds %+v after the disk has space again", recs["1001"].Current)
		}
	})
}

// Only a timed presence ending is announced as a timer's change; a write
// without a channel (REST, the board) is a caller's.
func TestTimerFlag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, true)
		got, err := f.svc.Set(ctx, nil, "1001", set(presence.Available))
		f.do("available, without a channel", got, err, presence.Available)
		got, err = f.svc.Set(ctx, nil, "1001", presence.Value{State: presence.Away, Expires: time.Now().Add(time.Minute)})
		f.do("timed away", got, err, presence.Away)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		var timers []bool
		for _, c := range f.changes {
			if c.User == "1001" {
				timers = append(timers, c.Timer)
			}
		}
		if fmt.Sprint(timers) != "[false false true]" {
			t.Fatalf("Timer of the changes: %v", timers)
		}
	})
}

// The AMI echo of a timed presence says what Asterisk holds, which has no
// end time: what is announced for it still carries the end presenced
// keeps, so that views show "until 14:30" whether or not AMI is there.
func TestEchoKeepsExpires(t *testing.T) {
	var mu sync.Mutex
	var changes []presence.Change
	ast := astemu.New()
	ch := presence.VariableWriter{Channel: astemu.NewChannel(ast)}
	svc, err := presence.NewService(presence.Config{Store: newMemStore(), Observed: true, Listener: presence.ListenerFunc(func(c presence.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	})})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	got, err := svc.Set(ctx, ch, "1001", presence.Value{State: presence.Away, Message: "Lunch", Expires: time.Now().Add(30 * time.Minute)})
	if err != nil || got.Expires.IsZero() {
		t.Fatalf("set: %+v %v", got, err)
	}
	// The echo, as AMI's PresenceStateChange reports it.
	svc.Observe("CustomPresence:1001", presence.Value{State: presence.Away, Message: "Lunch"}, false)
	mu.Lock()
	defer mu.Unlock()
	if len(changes) == 0 {
		t.Fatal("nothing announced")
	}
	for i, c := range changes {
		if !c.Value.Expires.Equal(got.Expires) {
			t.Fatalf("change %d: expires %v, want %v (%+v)", i, c.Value.Expires, got.Expires, c)
		}
	}
	if v, _, _ := svc.Lookup("1001"); !v.Expires.Equal(got.Expires) {
		t.Fatalf("lookup: expires %v", v.Expires)
	}
}
