package hints

import (
	"testing"

	"github.com/presenced/presenced/core/presence"
)

func val(s presence.State, msg string) ProviderPresence {
	return ProviderPresence{Value: presence.Value{State: s, Message: msg}}
}

func TestParseHintApp(t *testing.T) {
	tests := []struct {
		app        string
		devs, prov []string
	}{
		{"PJSIP/1001,CustomPresence:1001", []string{"PJSIP/1001"}, []string{"CustomPresence:1001"}},
		{"PJSIP/1001&PJSIP/1001b&&PJSIP/1001", []string{"PJSIP/1001", "PJSIP/1001b"}, nil},
		{",CustomPresence:2006&CustomPresence:2006-mobile", nil, []string{"CustomPresence:2006", "CustomPresence:2006-mobile"}},
		{"", nil, nil},
	}
	for _, tt := range tests {
		d, p := ParseHintApp(tt.app)
		if len(d) != len(tt.devs) || len(p) != len(tt.prov) {
			t.Fatalf("%q: %q %q", tt.app, d, p)
		}
		for i := range d {
			if d[i] != tt.devs[i] {
				t.Errorf("%q: devices %q", tt.app, d)
			}
		}
		for i := range p {
			if p[i] != tt.prov[i] {
				t.Errorf("%q: providers %q", tt.app, p)
			}
		}
	}
}

func TestCombinePresence(t *testing.T) {
	tests := []struct {
		in   []ProviderPresence
		want presence.State
		msg  string
		inv  bool
	}{
		{nil, presence.NotSet, "", false},
		{[]ProviderPresence{val(presence.Available, "a"), val(presence.NotSet, "")}, presence.Available, "a", false},
		{[]ProviderPresence{val(presence.Available, "a"), val(presence.Unavailable, "u")}, presence.Unavailable, "u", false},
		{[]ProviderPresence{val(presence.Away, "1"), val(presence.Chat, "2")}, presence.Away, "1", false},
		{[]ProviderPresence{val(presence.XA, "x"), val(presence.DND, "d"), val(presence.Away, "w")}, presence.DND, "d", false},
		{[]ProviderPresence{val(presence.Away, "first"), val(presence.Away, "second")}, presence.Away, "first", false},
		{[]ProviderPresence{{Invalid: true}, val(presence.NotSet, "")}, presence.NotSet, "", false},
		{[]ProviderPresence{{Invalid: true}}, presence.NotSet, "", true},
	}
	for _, tt := range tests {
		got := CombinePresence(tt.in)
		if got.Value.State != tt.want || got.Value.Message != tt.msg || got.Invalid != tt.inv {
			t.Errorf("CombinePresence(%+v) = %+v, want %v %q invalid=%v", tt.in, got, tt.want, tt.msg, tt.inv)
		}
	}
}

func TestTable(t *testing.T) {
	tb := NewTable()
	s, changed := tb.Put(Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001"}, Providers: []string{"CustomPresence:1001"}})
	if !changed || s.Extension != ExtIdle || s.Device != Unknown || s.Presence.State != presence.NotSet {
		t.Fatalf("new hint: %+v", s)
	}
	// A presence-only hint shows Unavailable (BEHAVIOUR.md 4.11).
	if s, _ := tb.Put(Hint{Context: "internal", Exten: "2006", Providers: []string{"CustomPresence:2006", "CustomPresence:2006-mobile"}}); s.Extension != ExtUnavailable {
		t.Fatalf("presence-only hint: %v", s.Extension)
	}
	if ch := tb.SetDevice("PJSIP/1001", Unavailable); len(ch) != 1 || ch[0].Extension != ExtUnavailable || ch[0].Exten != "1001" {
		t.Fatalf("SetDevice: %+v", ch)
	}
	if ch := tb.SetDevice("PJSIP/1001", Unavailable); ch != nil {
		t.Fatalf("unchanged device reported: %+v", ch)
	}
	// A device state change that leaves the hint as it is (INVALID and
	// UNAVAILABLE both show Unavailable) still changes its device state.
	if ch := tb.SetDevice("PJSIP/1001", Invalid); len(ch) != 1 || ch[0].Extension != ExtUnavailable || ch[0].Device != Invalid {
		t.Fatalf("device-only change: %+v", ch)
	}
	if ch := tb.SetDevice("PJSIP/9999", InUse); len(ch) != 0 {
		t.Fatalf("a device of no hint changed hints: %+v", ch)
	}
	// Provider technology matches case-insensitively.
	ch := tb.SetPresence("customPresence:1001", val(presence.DND, "busy"))
	if len(ch) != 1 || ch[0].Presence.State != presence.DND || ch[0].Presence.Message != "busy" {
		t.Fatalf("SetPresence: %+v", ch)
	}
	if ch := tb.SetPresence("CustomPresence:2006-mobile", val(presence.Available, "")); len(ch) != 1 || ch[0].Presence.State != presence.Available {
		t.Fatalf("second provider: %+v", ch)
	}
	if ch := tb.SetPresence("CustomPresence:2006", val(presence.Away, "lunch")); len(ch) != 1 || ch[0].Presence.State != presence.Away {
		t.Fatalf("ranked provider: %+v", ch)
	}
	// Replacing a hint's devices (a dialplan reload) keeps its state, as
	// Asterisk does, until one of its new devices changes (BEHAVIOUR.md 4.13).
	before, _ := tb.Get("internal", "1001")
	tb.SetDevice("PJSIP/1001b", Ringing)
	s, changed = tb.Put(Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001b"}, Providers: []string{"CustomPresence:1001"}})
	if !changed || s.Extension != before.Extension || s.Device != before.Device || s.Devices[0] != "PJSIP/1001b" {
		t.Fatalf("replaced hint: %+v, before %+v", s, before)
	}
	if ch := tb.SetDevice("PJSIP/1001", InUse); len(ch) != 0 {
		t.Fatalf("an old device still drives the hint: %+v", ch)
	}
	if ch := tb.SetDevice("PJSIP/1001b", Busy); len(ch) != 1 || ch[0].Extension != ExtBusy {
		t.Fatalf("a new device's change does not recompute the hint: %+v", ch)
	}
	if _, changed := tb.Put(Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001b"}, Providers: []string{"CustomPresence:1001"}}); changed {
		t.Fatal("an identical Put reported a change")
	}
	if s, ok := tb.Remove("internal", "1001"); !ok || !s.Removed || s.Extension != ExtRemoved {
		t.Fatalf("Remove: %+v", s)
	}
	if _, ok := tb.Get("internal", "1001"); ok {
		t.Fatal("removed hint still there")
	}
	if ch := tb.SetDevice("PJSIP/1001b", Busy); len(ch) != 0 {
		t.Fatalf("removed hint changed: %+v", ch)
	}
	if snap := tb.Snapshot(); len(snap) != 1 || snap[0].Exten != "2006" {
		t.Fatalf("snapshot %+v", snap)
	}
	if devs := tb.Devices(); len(devs) != 0 {
		t.Fatalf("devices of remaining hints: %v", devs)
	}
}
