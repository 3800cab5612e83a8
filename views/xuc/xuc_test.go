package xuc

import (
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
)

// Every extension state Asterisk makes has its xuc status; the numbers
// are Asterisk's own.
func TestStatus(t *testing.T) {
	for _, c := range []struct {
		st     hints.ExtensionState
		exists bool
		want   int
		name   string
	}{
		{hints.ExtIdle, true, 0, "AVAILABLE"},
		{hints.ExtInUse, true, 1, "CALLING"},
		{hints.ExtBusy, true, 2, "BUSY"},
		{hints.ExtUnavailable, true, 4, "INDISPONIBLE"},
		{hints.ExtRinging, true, 8, "RINGING"},
		{hints.ExtInUse | hints.ExtRinging, true, 9, "BUSY_AND_RINGING"},
		{hints.ExtOnHold, true, 16, "ONHOLD"},
		{hints.ExtInUse | hints.ExtOnHold, true, 16, "ONHOLD"},
		{hints.ExtDeactivated, true, -1, "DEACTIVATED"},
		{hints.ExtRemoved, true, -2, "UNEXISTING"},
		{hints.ExtIdle, false, -2, "UNEXISTING"},
		{hints.ExtensionState(3), true, -99, "ERROR"},
	} {
		if got := Status(c.st, c.exists); got != c.want || StatusName(got) != c.name {
			t.Errorf("Status(%v, %v) = %d %s, want %d %s", c.st, c.exists, got, StatusName(got), c.want, c.name)
		}
	}
}

// A call's life on the user's phone as phone events: an incoming call
// rings, is answered, held, taken back, released; an outgoing one dials
// until answered; a repeat of a state is no event.
func TestCallEvents(t *testing.T) {
	at := time.Unix(1796000000, 0)
	in := calls.Call{Channel: "PJSIP/1002-01", Device: "PJSIP/1002", UniqueID: "u1", LinkedID: "l1", Direction: calls.Incoming, State: calls.Ringing,
		Number: "1001", Name: "Alice", Since: at, Vars: map[string]string{"USR_ticket": "42"}}
	with := func(c calls.Call, st calls.State) calls.Call { c.State = st; return c }
	out := calls.Call{Channel: "PJSIP/1002-02", Device: "PJSIP/1002", UniqueID: "u2", LinkedID: "u2", Direction: calls.Outgoing, State: calls.Dialing, Number: "0427466347"}
	steps := []struct {
		before, after []calls.Call
		want          string
	}{
		{nil, []calls.Call{in}, "EventRinging u1 1001 Alice Incoming"},
		{[]calls.Call{in}, []calls.Call{in}, ""},
		{[]calls.Call{in}, []calls.Call{with(in, calls.Established)}, "EventEstablished u1 1001 Alice Incoming"},
		{[]calls.Call{with(in, calls.Established)}, []calls.Call{with(in, calls.Held)}, "EventOnHold u1 1001 Alice Incoming"},
		{[]calls.Call{with(in, calls.Held)}, []calls.Call{with(in, calls.Established), out}, "EventEstablished u1 1001 Alice Incoming|EventDialing u2 0427466347  Outgoing"},
		{[]calls.Call{out}, []calls.Call{with(out, calls.Ringing)}, ""}, // the far end rings: still dialing
		{[]calls.Call{with(in, calls.Established), out}, nil, "EventReleased u1 1001 Alice Incoming|EventReleased u2 0427466347  Outgoing"},
	}
	for i, s := range steps {
		var got []string
		for _, e := range CallEvents(s.before, s.after, "1002", "bob") {
			if e.DN != "1002" || e.Username != "bob" {
				t.Fatalf("step %d: %+v", i, e)
			}
			if e.UniqueID == "u1" && (e.UserData["USR_ticket"] != "42" || e.LinkedID != "l1") {
				t.Fatalf("step %d: attached data %+v", i, e)
			}
			got = append(got, strings.Join([]string{e.EventType, e.UniqueID, e.OtherDN, e.OtherDName, e.CallDirection}, " "))
		}
		if g := strings.Join(got, "|"); g != s.want {
			t.Errorf("step %d: %q, want %q", i, g, s.want)
		}
	}
}

func TestParseUsers(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	users, err := ParseUsers(strings.NewReader("# comment\n\nalice:" + h + ":1001\nbob:" + h + ":1002:1002@office\n"))
	if err != nil || len(users) != 2 || users["alice"].Mailbox != "1001@default" || users["bob"].Mailbox != "1002@office" || users["bob"].Extension != "1002" {
		t.Fatalf("%v %+v", err, users)
	}
	for _, bad := range []string{
		"alice:" + h,                                 // no extension
		"alice:plain:1001",                           // not a bcrypt hash
		"alice:" + h + ":1001&PJSIP/evil",            // hostile extension
		"al ice:" + h + ":1001",                      // bad login
		"alice:" + h + ":1001\nalice:" + h + ":1002", // twice
		"alice:" + h + ":1001:nobox",                 // not a box
	} {
		if _, err := ParseUsers(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line ") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("an empty password hashed")
	}
}

func FuzzParseUsers(f *testing.F) {
	f.Add("alice:$2a$10$sjUtvhGCAP091YjSwl2zreXGtNOC0bAivM344WKW/vXRUIQiiQn3K:1001\n")
	f.Add("# x\n\n:::\n")
	f.Fuzz(func(t *testing.T, s string) {
		users, err := ParseUsers(strings.NewReader(s))
		if err != nil {
			return
		}
		for login, u := range users {
			if login != u.Login || strings.ContainsAny(u.Extension, "&,${}\r\n") {
				t.Fatalf("%q -> %+v", s, u)
			}
		}
	})
}
