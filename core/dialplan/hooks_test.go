package dialplan_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/core/dialplan"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/storage/store"
)

type env struct {
	ast   *astemu.Asterisk
	hooks *dialplan.Hooks
	dnd   *dndRecorder
}

type dndRecorder struct{ calls []string }

func (d *dndRecorder) SetDND(_ context.Context, user string, on bool) error {
	d.calls = append(d.calls, user+map[bool]string{true: "=on", false: "=off"}[on])
	return nil
}

func newEnv(t *testing.T) *env {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e := &env{ast: astemu.New(), dnd: &dndRecorder{}}
	svc, err := presence.NewService(presence.Config{Store: db, DND: e.dnd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	e.hooks = &dialplan.Hooks{Presence: svc}
	return e
}

// call runs one hook on a fresh channel and returns its variables.
func (e *env) call(script, caller string, args ...string) map[string]string {
	ch := astemu.NewChannel(e.ast)
	e.hooks.Handle(context.Background(), ch, script, args, caller)
	return ch.Vars()
}

func TestHooks(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		script string
		caller string
		args   []string
		want   map[string]string
	}{
		{"presence/set", "1001", []string{"", "available"}, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_STATE": "available", "PRESENCED_ERROR": ""}},
		{"presence/set", "1001", []string{"", "away", "lunch", `back at 2, "maybe"`, "1h"}, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_STATE": "away", "PRESENCED_SUBTYPE": "lunch", "PRESENCED_MESSAGE": `back at 2, "maybe"`}},
		{"presence/get?user=1001", "unknown", nil, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_STATE": "away", "PRESENCED_MESSAGE": `back at 2, "maybe"`}},
		{"dnd/toggle", "1001", nil, map[string]string{"PRESENCED_STATE": "dnd"}},
		{"dnd/toggle", "1001", nil, map[string]string{"PRESENCED_STATE": "away"}},
		{"dnd/off", "1001", nil, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_STATE": "away"}},
		{"presence/restore", "1001", nil, map[string]string{"PRESENCED_STATE": "available"}},
		{"presence/toggle", "1001", []string{"", "xa", "", "multi\nline"}, map[string]string{"PRESENCED_STATE": "xa", "PRESENCED_MESSAGE": "multi line"}},
		{"presence/toggle", "1001", []string{"", "xa"}, map[string]string{"PRESENCED_STATE": "available"}},
		{"dnd/on", "1002", []string{"", "in a meeting"}, map[string]string{"PRESENCED_STATE": "dnd", "PRESENCED_MESSAGE": "in a meeting"}},
		// Errors: result ERROR, a stable code, a sentence; nothing written.
		{"presence/set", "1001", []string{"", "busy"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "INVALID_STATE"}},
		{"presence/set", "unknown", []string{"", "away"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "INVALID_USER"}},
		{"presence/set", "1001", []string{"1001)", "away"}, map[string]string{"PRESENCED_ERROR": "INVALID_USER"}},
		{"presence/set", "1001", []string{"", "away", "", strings.Repeat("x", 256)}, map[string]string{"PRESENCED_ERROR": "TOO_LONG"}},
		{"presence/set", "1001", []string{"", "away", "\xff"}, map[string]string{"PRESENCED_ERROR": "INVALID_TEXT"}},
		{"presence/set", "1001", []string{"", "away", "", "", "forever"}, map[string]string{"PRESENCED_ERROR": "INVALID_ARGUMENT"}},
		{"presence/fly", "1001", nil, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "NOT_FOUND"}},
		{"hint/get", "1001", []string{"1001@internal"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "NOT_FOUND"}},
		{"hint/get", "1001", []string{"1001@in,ternal"}, map[string]string{"PRESENCED_ERROR": "INVALID_ARGUMENT"}},
		{"presence/restore", "1003", nil, map[string]string{"PRESENCED_ERROR": "NOT_FOUND"}},
	}
	for i, s := range steps {
		got := e.call(s.script, s.caller, s.args...)
		for k, v := range s.want {
			if got[k] != v {
				t.Fatalf("step %d %s %q: %s = %q, want %q (all: %v)", i, s.script, s.args, k, got[k], v, got)
			}
		}
		if got["PRESENCED_RESULT"] == "ERROR" && got["PRESENCED_ERROR_TEXT"] == "" {
			t.Fatalf("step %d: no error text", i)
		}
	}
	if v, _ := e.ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,value)"); v != "available" {
		t.Fatalf("Asterisk holds %q", v)
	}
	// The device follows the presence: on when dnd began, off when it
	// ended, nothing for a dnd/off of a user not in dnd.
	if strings.Join(e.dnd.calls, " ") != "1001=on 1001=off 1002=on" {
		t.Fatalf("DND device calls %v", e.dnd.calls)
	}
}

func TestRejectedWriteReportsAsteriskRejected(t *testing.T) {
	e := newEnv(t)
	e.ast.RejectPresence = true
	got := e.call("presence/set", "1001", "", "away")
	if got["PRESENCED_RESULT"] != "ERROR" || got["PRESENCED_ERROR"] != "ASTERISK_REJECTED" {
		t.Fatalf("vars %v", got)
	}
}

func TestTimedSetExpiresAt(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Add(time.Hour).Truncate(time.Second) // the timer must not fire during the test
	e.hooks.Now = func() time.Time { return now }
	got := e.call("presence/set?for=30m", "1001", "", "away")
	if got["PRESENCED_RESULT"] != "OK" {
		t.Fatalf("vars %v", got)
	}
	v, err := e.hooks.Presence.Get(context.Background(), nil, "1001")
	if err != nil || !v.Expires.Equal(now.Add(30*time.Minute)) {
		t.Fatalf("value %+v, %v", v, err)
	}
}

func TestHintGet(t *testing.T) {
	e := newEnv(t)
	tb := hints.NewTable()
	e.hooks.Hints = tb
	tb.Put(hints.Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001", "Stasis:presenced-dnd-1001"}, Providers: []string{"CustomPresence:1001"}})
	tb.SetDevice("PJSIP/1001", hints.NotInUse)
	tb.SetDevice("Stasis:presenced-dnd-1001", hints.Busy)
	tb.SetPresence("CustomPresence:1001", hints.ProviderPresence{Value: presence.Value{State: presence.DND, Message: "meeting"}})
	got := e.call("hint/get", "1002", "1001@internal")
	want := map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_HINT_STATE": "Busy", "PRESENCED_DEVICE_STATE": "BUSY", "PRESENCED_STATE": "dnd", "PRESENCED_MESSAGE": "meeting"}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q (%v)", k, got[k], v, got)
		}
	}
	if got := e.call("hint/get?exten=1001", "1002"); got["PRESENCED_ERROR"] != "NOT_FOUND" {
		t.Fatalf("1001@default: %v", got)
	}
}

// The forward hooks: feature codes set and clear a forward, forward/get
// reads every forward into variables (a destination while it is on), a
// hostile destination is refused and changes nothing, and the forwards
// survive a reopen of the store.
func TestForwardHooks(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	fwd := forward.NewService(forward.Config{Store: db})
	if err := fwd.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.call("forward/get", "1001"); got["PRESENCED_ERROR"] != "NOT_FOUND" {
		t.Fatalf("without forwards: %v", got)
	}
	e.hooks.Forwards = fwd
	steps := []struct {
		script string
		args   []string
		want   map[string]string
	}{
		{"forward/get", nil, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_FWD_UNCONDITIONAL": "", "PRESENCED_FWD_BUSY": "", "PRESENCED_FWD_NOANSWER": ""}},
		{"forward/set", []string{"", "unconditional", "0612345678"}, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_FWD_UNCONDITIONAL": "0612345678"}},
		{"forward/set", []string{"", "busy", "2002"}, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_FWD_UNCONDITIONAL": "0612345678", "PRESENCED_FWD_BUSY": "2002"}},
		{"forward/off", []string{"", "unconditional"}, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_FWD_UNCONDITIONAL": "", "PRESENCED_FWD_BUSY": "2002"}},
		{"forward/set", []string{"", "noanswer", "${SHELL(id)}"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "INVALID_ARGUMENT", "PRESENCED_FWD_NOANSWER": ""}},
		{"forward/set", []string{"", "noanswer", "1001&PJSIP/evil"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "INVALID_ARGUMENT"}},
		{"forward/set", []string{"", "noanswer"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "INVALID_ARGUMENT"}},
		{"forward/set", []string{"", "sometimes", "2002"}, map[string]string{"PRESENCED_RESULT": "ERROR", "PRESENCED_ERROR": "INVALID_ARGUMENT"}},
		{"forward/set?user=1002&kind=na&destination=%2B33427466347", nil, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_FWD_NOANSWER": "+33427466347"}},
		{"forward/get", nil, map[string]string{"PRESENCED_RESULT": "OK", "PRESENCED_FWD_UNCONDITIONAL": "", "PRESENCED_FWD_BUSY": "2002", "PRESENCED_FWD_NOANSWER": ""}},
	}
	for i, s := range steps {
		got := e.call(s.script, "1001", s.args...)
		for k, v := range s.want {
			if got[k] != v {
				t.Fatalf("step %d %s %v: %s = %q, want %q (%v)", i, s.script, s.args, k, got[k], v, got)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again := forward.NewService(forward.Config{Store: db})
	if err := again.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := again.Get("1001"); got.Busy.Active() != "2002" || got.Unconditional.Enabled || got.Unconditional.Destination != "0612345678" {
		t.Fatalf("after reopen: %+v", got)
	}
	if again.Get("1002").NoAnswer.Active() != "+33427466347" {
		t.Fatalf("1002 after reopen: %+v", again.Get("1002"))
	}
}
