package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/fastagi/agitest"
	"github.com/presenced/presenced/internal/astemu"
)

// openMain opens presenced on a free port with its store in dir, and
// extra PRESENCED_ variables.
func openMain(t testing.TB, dir string, extra ...string) *Main {
	t.Helper()
	cfg, err := LoadConfig(append([]string{"PRESENCED_AGI_LISTEN=127.0.0.1:0", "PRESENCED_HTTP_LISTEN=127.0.0.1:0", "PRESENCED_DATA_DIR=" + dir}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, zerolog.Nop())
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func hook(t *testing.T, m *Main, ast *astemu.Asterisk, script, caller string, args ...string) *agitest.Call {
	t.Helper()
	c := &agitest.Call{Ast: ast, Script: script, Args: args, CallerID: caller}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Run(ctx, m.AGIAddr().String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// The wire of one presence/set hook: read what Asterisk holds (the three
// fields in one GET FULL VARIABLE, as recorded in BEHAVIOUR.md 4.19), write
// the base64 form, read it back, then the result variables,
// PRESENCED_RESULT last: 9 commands.
func TestPresenceSetOnTheWire(t *testing.T) {
	m := openMain(t, t.TempDir())
	defer m.Close()
	ast := astemu.New()
	c := hook(t, m, ast, "presence/set", "1001", "", "away", "", `Lunch, back at 2 "ish"`)
	want := []string{
		`GET FULL VARIABLE "${PRESENCE_STATE(CustomPresence:1001,value)},${PRESENCE_STATE(CustomPresence:1001,subtype,e)},${PRESENCE_STATE(CustomPresence:1001,message,e)}"`,
		`SET VARIABLE "PRESENCE_STATE(CustomPresence:1001)" "away,,THVuY2gsIGJhY2sgYXQgMiAiaXNoIg==,e"`,
		`GET FULL VARIABLE "${PRESENCE_STATE(CustomPresence:1001,value)},${PRESENCE_STATE(CustomPresence:1001,subtype,e)},${PRESENCE_STATE(CustomPresence:1001,message,e)}"`,
		`SET VARIABLE "PRESENCED_STATE" "away"`,
		`SET VARIABLE "PRESENCED_SUBTYPE" ""`,
		`SET VARIABLE "PRESENCED_MESSAGE" "Lunch, back at 2 \"ish\""`,
		`SET VARIABLE "PRESENCED_ERROR" ""`,
		`SET VARIABLE "PRESENCED_ERROR_TEXT" ""`,
		`SET VARIABLE "PRESENCED_RESULT" "OK"`,
	}
	if got := c.Commands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if msg, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message)"); msg != `Lunch, back at 2 "ish"` {
		t.Fatalf("Asterisk holds message %q", msg)
	}
}

// A channel that hangs up during the hook still gets its variables (they
// work on a dead channel), and a rejected write is reported.
func TestHookOutcomes(t *testing.T) {
	m := openMain(t, t.TempDir())
	defer m.Close()
	ast := astemu.New()
	c := &agitest.Call{Ast: ast, Script: "dnd/on", CallerID: "1001", HangupAfter: 2}
	if err := c.Run(context.Background(), m.AGIAddr().String()); err != nil {
		t.Fatal(err)
	}
	if c.Var("PRESENCED_RESULT") != "OK" || c.Var("PRESENCED_STATE") != "dnd" {
		t.Fatalf("after hangup: %v", c.Vars())
	}
	ast.RejectPresence = true
	c = hook(t, m, ast, "presence/set?state=away", "1001")
	if c.Var("PRESENCED_ERROR") != "ASTERISK_REJECTED" || c.Var("PRESENCED_RESULT") != "ERROR" {
		t.Fatalf("rejected: %v", c.Vars())
	}
	ast.RejectPresence = false
	c = &agitest.Call{Ast: ast, Script: "presence/set?state=away", CallerID: "1001", CloseAt: 4}
	_ = c.Run(context.Background(), m.AGIAddr().String())
	// Asterisk went away after the write: the hook failed, and the next
	// hook still works.
	c = hook(t, m, ast, "presence/get", "1001")
	if c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("after an aborted session: %v", c.Vars())
	}
}

// Restore chains survive a restart on the same data directory.
func TestRestoreChainSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ast := astemu.New()
	m := openMain(t, dir)
	for _, st := range []string{"available", "away", "xa"} {
		if c := hook(t, m, ast, "presence/set", "1001", "", st); c.Var("PRESENCED_RESULT") != "OK" {
			t.Fatalf("set %s: %v", st, c.Vars())
		}
	}
	if c := hook(t, m, ast, "dnd/toggle", "1001"); c.Var("PRESENCED_STATE") != "dnd" {
		t.Fatalf("dnd: %v", c.Vars())
	}
	_ = m.Close()
	m = openMain(t, dir)
	defer m.Close()
	for _, want := range []string{"xa", "away", "available", "not_set"} {
		c := hook(t, m, ast, "presence/restore", "1001")
		if c.Var("PRESENCED_STATE") != want {
			t.Fatalf("restore: %v, want %s", c.Vars(), want)
		}
	}
}

// AGI(agi://.../presence/set?state=away,,,,"",) : the dialplan's quoted
// empty and trailing empty arguments arrive as empty agi_arg_N lines and
// count as "not given".
func TestEmptyAndTrailingArguments(t *testing.T) {
	m := openMain(t, t.TempDir())
	defer m.Close()
	c := hook(t, m, astemu.New(), "presence/set?state=away&message=From%20the%20query", "1001", "", "", "", "", "")
	if c.Var("PRESENCED_RESULT") != "OK" || c.Var("PRESENCED_STATE") != "away" || c.Var("PRESENCED_MESSAGE") != "From the query" {
		t.Fatalf("vars %v", c.Vars())
	}
}

// A hook answers once its change is on disk in the change log, not only
// in presenced's records: right after PRESENCED_RESULT the log has it.
func TestHookAnswersAfterItsChangeIsLogged(t *testing.T) {
	m := openMain(t, t.TempDir())
	defer m.Close()
	ast := astemu.New()
	for i := range 20 {
		msg := "logged " + strings.Repeat("x", i)
		if c := hook(t, m, ast, "presence/set", "1001", "", []string{"away", "dnd"}[i%2], "", msg); c.Var("PRESENCED_RESULT") != "OK" {
			t.Fatal(c.Vars())
		}
		head, _, _, err := m.db.LogState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := m.db.ReadLog(context.Background(), head-1, 1)
		if len(entries) != 1 || !strings.Contains(string(entries[0].Value), msg) {
			t.Fatalf("hook %d answered before its change was in the log (head %d: %v)", i, head, entries)
		}
	}
}
