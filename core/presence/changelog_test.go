package presence_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/astemu"
)

// changeLog is a change log that notes what a write went through, in
// order: the Listener's changes ("change away") and the waits ("sync").
type changeLog struct {
	mu    sync.Mutex
	steps []string
	fail  error
}

func (l *changeLog) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
}

func (l *changeLog) Sync(context.Context) error {
	l.note("sync")
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail
}

func (l *changeLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.steps, ", ")
	l.steps = nil
	return s
}

// A write answers once its change is in the change log: the change goes
// to the Listener, then the write waits for the log, whatever asks for
// it; a write that changes nothing does not wait; a log that cannot take
// the change makes the write UNAVAILABLE, with the change applied (the
// log takes it once it is back). A timed presence ending has nobody to
// answer and does not wait.
func TestWritesWaitForTheChangeLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ast := astemu.New()
		ch := presence.VariableWriter{Channel: astemu.NewChannel(ast)}
		log := &changeLog{}
		svc, err := presence.NewService(presence.Config{Store: newMemStore(), Background: ch, ChangeLog: log,
			Listener: presence.ListenerFunc(func(c presence.Change) { log.note("change " + c.Value.State.String()) })})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Open(ctx); err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		client := svc.Client()
		for _, c := range []struct {
			name  string
			write func() error
			fail  error
			want  string
			code  presence.Code
		}{
			{"a hook's set", func() error { _, err := svc.Set(ctx, ch, "1001", set(presence.Away)); return err }, nil, "change away, sync", ""},
			{"the same again", func() error { _, err := svc.Set(ctx, ch, "1001", set(presence.Away)); return err }, nil, "", ""},
			{"a door's set", func() error { _, _, err := client.Set(ctx, "1001", set(presence.DND)); return err }, nil, "change dnd, sync", ""},
			{"a door's restore", func() error { _, _, err := client.Restore(ctx, "1001"); return err }, nil, "change away, sync", ""},
			{"a toggle", func() error { _, err := svc.Toggle(ctx, ch, "1001", set(presence.DND)); return err }, nil, "change dnd, sync", ""},
			{"the log away", func() error { _, err := svc.Set(ctx, ch, "1001", set(presence.XA)); return err },
				errors.New("no leader"), "change xa, sync", presence.CodeUnavailable},
		} {
			log.fail = c.fail
			err := c.write()
			if got := log.take(); got != c.want {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
			if presence.ErrorCode(err) != c.code || (c.code != "") != (err != nil) {
				t.Errorf("%s: %v, want code %q", c.name, err, c.code)
			}
		}
		// The change the log did not take is applied all the same.
		if v, _, _ := svc.Lookup("1001"); v.State != presence.XA {
			t.Fatalf("after the log failed: %v", v.State)
		}
		log.fail = nil
		if _, err := svc.Set(ctx, ch, "1001", presence.Value{State: presence.Away, Expires: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		log.take()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := log.take(); got != "change xa" {
			t.Fatalf("a timed presence ending: %q", got)
		}
	})
}
