package conf

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"
)

func TestWriteHintsReadsBack(t *testing.T) {
	users, err := ReadUsersCSV(strings.NewReader("extension,devices,name\n1001,,Alice\n1002,PJSIP/1002 PJSIP/1002b,\"Bob; the builder\"\n# a comment\n1003,Custom:x&PJSIP/1003\n"), "PJSIP")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteHints(&out, "from-internal", users); err != nil {
		t.Fatal(err)
	}
	// The generated file, #included into an extensions.conf that already
	// has the context, is read back as the same hints.
	fsys := fstest.MapFS{
		"extensions.conf":      {Data: []byte("[from-internal]\nexten => 100,1,NoOp\n#include presenced-hints.conf\nexten => 101,hint,PJSIP/101\n")},
		"presenced-hints.conf": {Data: out.Bytes()},
	}
	cfg, probs := Loader{FS: fsys, Dir: "."}.Load("extensions.conf")
	dp, more := Hints(cfg)
	if len(probs)+len(more)+len(Check(dp)) != 0 {
		t.Fatalf("problems: %v %v\n%s", probs, more, out.String())
	}
	want := map[string]string{
		"1001@from-internal": "PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001",
		"1002@from-internal": "PJSIP/1002&PJSIP/1002b&Stasis:presenced-dnd-1002,CustomPresence:1002",
		"1003@from-internal": "Custom:x&PJSIP/1003&Stasis:presenced-dnd-1003,CustomPresence:1003",
		"101@from-internal":  "PJSIP/101",
	}
	if len(dp.Hints) != len(want) {
		t.Fatalf("hints %+v\n%s", dp.Hints, out.String())
	}
	for _, h := range dp.Hints {
		if want[h.Key()] != h.App() {
			t.Errorf("%s => %s, want %s", h.Key(), h.App(), want[h.Key()])
		}
	}
	if !strings.Contains(out.String(), "; Bob; the builder") {
		t.Errorf("name comment missing:\n%s", out.String())
	}
}

func TestUsersRefused(t *testing.T) {
	for _, in := range []string{"10 01,,x", "1001,1001,x", "1001,PJSIP/1001,a\rb", "1001,PJSIP/1,x,extra", "x)y,,", "1001,\"PJSIP/1,2\","} {
		if _, err := ReadUsersCSV(strings.NewReader(in), "PJSIP"); err == nil {
			t.Errorf("ReadUsersCSV(%q) accepted", in)
		}
	}
	for _, in := range []string{"", "1001=", "1001=PJSIP/1001,x", "a b"} {
		if _, err := ParseUser(in, "PJSIP"); err == nil {
			t.Errorf("ParseUser(%q) accepted", in)
		}
	}
	if err := WriteHints(&bytes.Buffer{}, "bad context]", []Entry{{Exten: "1", Devices: []string{"PJSIP/1"}}}); err == nil {
		t.Error("bad context accepted")
	}
	if err := WriteHints(&bytes.Buffer{}, "c", []Entry{{Exten: "1", Devices: []string{"PJSIP/1"}}, {Exten: "1", Devices: []string{"PJSIP/1"}}}); err == nil {
		t.Error("a duplicate extension accepted")
	}
}

func TestCheck(t *testing.T) {
	dp := Dialplan{Hints: []HintDef{
		{Hint: hintOf("c", "1", "1001&Stasis:presenced-dnd-1", "CustomPresence:1"), File: "f", Line: 1},
		{Hint: hintOf("c", "2", "PJSIP/2", "XMPP:bob"), File: "f", Line: 2},
		{Hint: hintOf("c", "3", "", ""), File: "f", Line: 3},
	}}
	probs := Check(dp)
	if len(probs) != 3 || !probs[0].Error || probs[1].Error || !probs[2].Error {
		t.Fatalf("%v", probs)
	}
}

// Hints for another site's users read back as hints of the devices
// presenced drives for that site, and their presence.
func TestWriteRemoteHintsReadsBack(t *testing.T) {
	var out bytes.Buffer
	if err := WriteRemoteHints(&out, "internal", "paris", []Entry{{Exten: "2001", Name: "Alice"}, {Exten: "2002-b"}}); err != nil {
		t.Fatal(err)
	}
	cfg, probs := Loader{FS: fstest.MapFS{"extensions.conf": {Data: out.Bytes()}}, Dir: "."}.Load("extensions.conf")
	dp, more := Hints(cfg)
	if len(probs)+len(more)+len(Check(dp)) != 0 {
		t.Fatalf("problems: %v %v\n%s", probs, more, out.String())
	}
	want := map[string]string{
		"2001@internal":   "Stasis:presenced-remote-paris-2001,CustomPresence:2001",
		"2002-b@internal": "Stasis:presenced-remote-paris-2002-b,CustomPresence:2002-b",
	}
	if len(dp.Hints) != len(want) {
		t.Fatalf("hints %+v\n%s", dp.Hints, out.String())
	}
	for _, h := range dp.Hints {
		if want[h.Key()] != h.App() {
			t.Errorf("%s => %s, want %s", h.Key(), h.App(), want[h.Key()])
		}
	}
	for _, bad := range []struct{ site, exten string }{{"Paris", "1"}, {"pa-ris", "1"}, {"", "1"}, {"paris", "x y"}} {
		if err := WriteRemoteHints(&bytes.Buffer{}, "c", bad.site, []Entry{{Exten: bad.exten}}); err == nil {
			t.Errorf("site %q, exten %q accepted", bad.site, bad.exten)
		}
	}
}
