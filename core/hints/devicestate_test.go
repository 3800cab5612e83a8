package hints

import (
	"strings"
	"testing"
)

// oracle states the aggregation rules as the issue writes them, set-wise:
// no device = INVALID; RINGING together with INUSE, ONHOLD or BUSY =
// RINGINUSE; otherwise the highest of
// INVALID < UNKNOWN < UNAVAILABLE < NOT_INUSE < ONHOLD < RINGING < INUSE < BUSY < RINGINUSE.
func oracle(states []DeviceState) DeviceState {
	order := []DeviceState{Invalid, Unknown, Unavailable, NotInUse, OnHold, Ringing, InUse, Busy, RingInUse}
	rank := func(s DeviceState) int {
		for i, o := range order {
			if o == s {
				return i
			}
		}
		panic(s)
	}
	ringing, inuse := false, false
	best := Invalid
	for _, s := range states {
		ringing = ringing || s == Ringing
		inuse = inuse || s == InUse || s == OnHold || s == Busy
		if rank(s) > rank(best) {
			best = s
		}
	}
	if ringing && inuse {
		return RingInUse
	}
	return best
}

// Every combination of up to three device states, in every order.
func TestAggregateAllCombinations(t *testing.T) {
	all := DeviceStates()
	check := func(states ...DeviceState) {
		agg := NewAggregate()
		for _, s := range states {
			agg.Add(s)
		}
		if got, want := agg.Result(), oracle(states); got != want {
			t.Errorf("aggregate(%v) = %v, want %v", states, got, want)
		}
	}
	n := 0
	check()
	for _, a := range all {
		check(a)
		for _, b := range all {
			check(a, b)
			for _, c := range all {
				check(a, b, c)
				n++
			}
		}
	}
	if n != 729 {
		t.Fatalf("%d triples", n)
	}
}

// What a real Asterisk 22 showed (BEHAVIOUR.md 4.2-4.4, 4.10, 4.11), as
// device states in, `core show hints` State: out.
func TestHintStatesRecorded(t *testing.T) {
	tests := []struct {
		where   string
		devices []DeviceState
		want    string
	}{
		{"4.2 unregistered phone", []DeviceState{Unavailable}, "Unavailable"},
		{"4.5 registered phone", []DeviceState{NotInUse}, "Idle"},
		{"4.4 ringing callee", []DeviceState{Ringing}, "Ringing"},
		{"4.4 caller while ringing", []DeviceState{InUse}, "InUse"},
		{"4.10 DND BUSY, phone unregistered", []DeviceState{Unavailable, Busy}, "Busy"},
		{"4.10 DND INVALID, phone unregistered", []DeviceState{Unavailable, Invalid}, "Unavailable"},
		{"4.10 DND UNAVAILABLE, phone unregistered", []DeviceState{Unavailable, Unavailable}, "Unavailable"},
		{"4.10 DND BUSY, phone registered", []DeviceState{NotInUse, Busy}, "Busy"},
		{"4.10 DND INVALID, phone registered", []DeviceState{NotInUse, Invalid}, "Idle"},
		{"4.10 DND INUSE, phone registered", []DeviceState{NotInUse, InUse}, "InUse"},
		{"4.11 no such endpoint and a never-set device", []DeviceState{Invalid, Unknown}, "Idle"},
		{"4.3 no such endpoint", []DeviceState{Invalid}, "Unavailable"},
	}
	for _, tt := range tests {
		agg := NewAggregate()
		for _, d := range tt.devices {
			agg.Add(d)
		}
		if got := ExtensionStateOf(agg.Result()).String(); got != tt.want {
			t.Errorf("%s: %v -> %s, want %s", tt.where, tt.devices, got, tt.want)
		}
	}
}

func TestExtensionStates(t *testing.T) {
	want := map[DeviceState]string{
		Unknown: "Idle", NotInUse: "Idle", InUse: "InUse", Busy: "Busy", Invalid: "Unavailable",
		Unavailable: "Unavailable", Ringing: "Ringing", RingInUse: "InUse&Ringing", OnHold: "Hold",
	}
	for d, w := range want {
		if got := ExtensionStateOf(d).String(); got != w {
			t.Errorf("%v -> %s, want %s", d, got, w)
		}
	}
	codes := map[ExtensionState]int{ExtIdle: 0, ExtInUse: 1, ExtBusy: 2, ExtUnavailable: 4, ExtRinging: 8, ExtOnHold: 16, ExtInUse | ExtRinging: 9, ExtRemoved: -2, ExtDeactivated: -1}
	for e, c := range codes {
		if int(e) != c {
			t.Errorf("%v = %d, want %d", e, int(e), c)
		}
	}
	if (ExtInUse|ExtOnHold).String() != "InUse&Hold" || ExtRemoved.String() != "Unknown" {
		t.Error("names")
	}
}

func TestParseDeviceState(t *testing.T) {
	for _, d := range DeviceStates() {
		for _, s := range []string{d.String(), strings.ToLower(d.String())} {
			if got := ParseDeviceState(s); got != d {
				t.Errorf("ParseDeviceState(%q) = %v", s, got)
			}
		}
	}
	for _, s := range []string{"", "busy ", "IN_USE", "not-inuse", "SOMETHING"} {
		if got := ParseDeviceState(s); got != Unknown {
			t.Errorf("ParseDeviceState(%q) = %v, want UNKNOWN", s, got)
		}
	}
}

func FuzzParseDeviceState(f *testing.F) {
	for _, d := range DeviceStates() {
		f.Add(d.String())
	}
	f.Add("ringInUse")
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseDeviceState(s)
		if d != Unknown && !strings.EqualFold(d.String(), s) {
			t.Fatalf("%q parsed as %v", s, d)
		}
		if ParseDeviceState(d.String()) != d {
			t.Fatalf("%v does not round-trip", d)
		}
	})
}

func TestStateTextRoundTrip(t *testing.T) {
	for _, d := range DeviceStates() {
		b, _ := d.MarshalText()
		var got DeviceState
		if err := got.UnmarshalText(b); err != nil || got != d {
			t.Errorf("%v: %v %v", d, got, err)
		}
	}
	for _, e := range []ExtensionState{ExtIdle, ExtInUse, ExtBusy, ExtUnavailable, ExtRinging, ExtInUse | ExtRinging, ExtOnHold, ExtInUse | ExtOnHold, ExtRemoved} {
		b, _ := e.MarshalText()
		var got ExtensionState
		if err := got.UnmarshalText(b); err != nil || got != e {
			t.Errorf("%v: %v %v", e, got, err)
		}
	}
	var e ExtensionState
	if err := e.UnmarshalText([]byte("Sleepy")); err == nil {
		t.Error("unknown name accepted")
	}
}

// A device set to DeviceStateFor(e) gives a hint of that one device the
// extension state e; InUse&Hold, which no one device gives, shows Hold.
func TestDeviceStateFor(t *testing.T) {
	for _, e := range []ExtensionState{ExtIdle, ExtInUse, ExtBusy, ExtUnavailable, ExtRinging, ExtInUse | ExtRinging, ExtOnHold} {
		if got := ExtensionStateOf(DeviceStateFor(e)); got != e {
			t.Errorf("%s: the device %s gives %s", e, DeviceStateFor(e), got)
		}
	}
	if got := ExtensionStateOf(DeviceStateFor(ExtInUse | ExtOnHold)); got != ExtOnHold {
		t.Errorf("InUse&Hold shows %s", got)
	}
	if DeviceStateFor(ExtRemoved) != Invalid {
		t.Errorf("a removed hint: %s", DeviceStateFor(ExtRemoved))
	}
}

func TestRemoteDevice(t *testing.T) {
	if d := RemoteDevice("paris", "2001-b"); d != "Stasis:presenced-remote-paris-2001-b" {
		t.Fatal(d)
	}
}
