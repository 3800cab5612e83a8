package appws

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/presenced/presenced/core/presence"
)

// The test vector, and info as the compact JSON sent.
func TestDigest(t *testing.T) {
	if got := Digest("pbxadminapi", "", "", "", "", nil, "0123456789abcdef", "pwd"); got != "a205299ed2ef2786c311e0be1b14db343f2cadd906a6ae7b564eee34bda5e9a1" {
		t.Fatalf("test vector: %s", got)
	}
	if Digest("a", "", "", "", "", json.RawMessage("null"), "c", "p") != Digest("a", "", "", "", "", nil, "c", "p") {
		t.Fatal("a null info is no info")
	}
	spaced := Digest("a", "d", "s", "g", "n", json.RawMessage(`{ "x" : [1, 2] }`), "c", "p")
	if spaced != Digest("a", "d", "s", "g", "n", json.RawMessage(`{"x":[1,2]}`), "c", "p") {
		t.Fatal("info is taken compact")
	}
	if spaced == Digest("a", "d", "s", "g", "n", nil, "c", "p") {
		t.Fatal("info not in the digest")
	}
}

func TestActivities(t *testing.T) {
	for _, c := range []struct {
		activity string
		want     presence.Value
		shown    Presence
	}{
		{"", presence.Value{State: presence.Available}, Presence{"tel:", "open", "", ""}},
		{"away", presence.Value{State: presence.Away}, Presence{"tel:", "open", "away", ""}},
		{"Lunch", presence.Value{State: presence.Away, Subtype: "lunch"}, Presence{"tel:", "open", "lunch", ""}},
		{"meeting", presence.Value{State: presence.Away, Subtype: "meeting"}, Presence{"tel:", "open", "meeting", ""}},
		{"busy", presence.Value{State: presence.Away, Subtype: "busy"}, Presence{"tel:", "open", "busy", ""}},
		{"vacation", presence.Value{State: presence.XA}, Presence{"tel:", "open", "vacation", ""}},
		{"dnd", presence.Value{State: presence.DND}, Presence{"tel:", "open", "dnd", ""}},
		{"closed", presence.Value{State: presence.Unavailable}, Presence{"tel:", "closed", "", ""}},
	} {
		v, err := ToValue(c.activity, "")
		if err != nil || v != c.want {
			t.Errorf("%q: %+v %v", c.activity, v, err)
		}
		if p := FromValue(v); p != c.shown {
			t.Errorf("%q shown as %+v, want %+v", c.activity, p, c.shown)
		}
	}
	if _, err := ToValue("sleeping", ""); presence.ErrorCode(err) != presence.CodeInvalidState {
		t.Fatalf("unknown activity: %v", err)
	}
	// presenced's own subtypes that are no activity show as away.
	if p := FromValue(presence.Value{State: presence.Away, Subtype: "dentist", Message: "back at 3"}); p.Activity != "away" || p.Note != "back at 3" {
		t.Fatalf("%+v", p)
	}
	for _, st := range []presence.State{presence.NotSet, presence.Chat} {
		if p := FromValue(presence.Value{State: st}); p.Activity != "" || p.Status != "open" {
			t.Fatalf("%v: %+v", st, p)
		}
	}
}

func TestParseApps(t *testing.T) {
	apps, err := ParseApps(strings.NewReader("# apps\npbxadminapi:pwd\nboard:s3:cret\n"))
	if err != nil || apps["pbxadminapi"] != "pwd" || apps["board"] != "s3:cret" {
		t.Fatalf("%v %v", err, apps)
	}
	for _, bad := range []string{"nopassword", "app:", ":pw", "a b:pw", "x:1\nx:2"} {
		if _, err := ParseApps(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"mt":"AppChallenge"}`, `{"mt":"AppLogin","app":"a","info":{"x":1},"src":"s"}`, `{"mt":"SetPresence","sip":"1001","activity":null,"src":3}`,
		`{"mt":""}`, `{"mt":"x","src":{}}`, `[]`, `{"mt":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		if m.MT == "" {
			t.Fatal("a message without mt decoded")
		}
		// The answer echoes src: it must marshal back.
		if _, err := json.Marshal(out{MT: m.MT + "Result", Src: m.Src}); err != nil {
			t.Fatalf("src %q does not marshal: %v", m.Src, err)
		}
		_ = Digest(m.App, m.Domain, m.SIP, m.GUID, m.DN, m.Info, "c", "p")
	})
}
