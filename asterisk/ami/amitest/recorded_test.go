package amitest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/astemu"
)

// recordedFrames returns the frames of a recorded AMI session
// (../../testdata/asterisk/transcripts), split on the blank line.
func recordedFrames(t *testing.T, name string) []string {
	t.Helper()
	raw, err := os.ReadFile("../../../testdata/asterisk/transcripts/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	s = s[strings.Index(s, "\r\n")+2:] // the banner
	var out []string
	for _, f := range strings.SplitAfter(s, "\r\n\r\n") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// login connects to srv, logs in, and returns the connection and a reader
// of whole frames; the login response is read already.
func login(t *testing.T, srv *Server) (net.Conn, func() string) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		var f strings.Builder
		for !strings.HasSuffix(f.String(), "\r\n\r\n") {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(line)
		}
		return f.String()
	}
	_, _ = nc.Write([]byte("Action: Login\r\nActionID: login\r\nUsername: ami\r\nSecret: ami\r\n\r\n"))
	read()
	return nc, read
}

func find(frames []string, prefix string) string {
	for _, f := range frames {
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	return ""
}

// TestEchoAsRecorded writes the recorded Setvar values to the fake and
// compares the events it sends, byte for byte, with those the real
// Asterisk sent (BEHAVIOUR.md 4.12).
func TestEchoAsRecorded(t *testing.T) {
	for _, tc := range []struct{ file, value string }{
		{"ami-presence-escaping.txt", "away,QsO8cm8gIuaXpeacrCIgaXQnc1xvaz8JKHRhYik=,bGluZTEgInF1b3RlZCIgaXQncyBvaz8gQzpcZGlyXG4JVEFCCmxpbmUyIMO8IOaXpeacrCAke1NIRUxMKGlkKX0sIGVuZA==,e"},
		{"ami-presence-escaping-2.txt", "dnd,sub \"q\" it's?,msg \\ \"x\" ü 日本 ${SHELL(id)}\tTAB"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want := recordedFrames(t, tc.file)
			srv, err := New("ami", "ami")
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.Attach(astemu.New())
			srv.SetHints(Hint{Exten: "1003", Context: "internal", App: "PJSIP/1003,CustomPresence:1003", Status: 4, StatusText: "Unavailable"})
			nc, read := login(t, srv)
			_, _ = nc.Write([]byte("Action: Setvar\r\nActionID: sv\r\nVariable: PRESENCE_STATE(CustomPresence:1003)\r\nValue: " + tc.value + "\r\n\r\n"))
			var got []string
			for len(got) < 4 { // FullyBooted, the response, two events
				got = append(got, read())
			}
			for _, prefix := range []string{"Event: PresenceStateChange\r\nPrivilege", "Event: PresenceStatus\r\nPrivilege: call,all\r\nExten: 1003\r\n"} {
				w, g := find(want, prefix), find(got, prefix)
				if w == "" || w != g {
					t.Errorf("%s\nrecorded %q\nfake     %q", prefix, w, g)
				}
			}
		})
	}
}

// recordedReload returns the frames Asterisk sent in the recorded dialplan
// reload session, by phase (the "event" lines of the transcript).
func recordedReload(t *testing.T) map[int][]string {
	t.Helper()
	raw, err := os.ReadFile("../../../testdata/asterisk/transcripts/ami-dialplan-reload.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]string{}
	phase := -1
	for _, line := range strings.Split(string(raw), "\n") {
		var o struct{ From, Data, Event string }
		if line == "" || json.Unmarshal([]byte(line), &o) != nil {
			continue
		}
		if strings.HasPrefix(o.Event, "PHASE ") {
			fmt.Sscanf(o.Event, "PHASE %d", &phase)
			continue
		}
		if o.Event != "" || o.From != "asterisk" || phase < 0 || !strings.HasPrefix(o.Data, "Event: ExtensionStatus\r\nPrivilege") {
			continue
		}
		out[phase] = append(out[phase], o.Data)
	}
	return out
}

// TestReloadAsRecorded runs the recorded reloads on the fake: the bursts
// are the recorded bytes, and ExtensionStateList keeps a changed hint's
// old state.
func TestReloadAsRecorded(t *testing.T) {
	want := recordedReload(t)
	srv, err := New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := []Hint{
		{"1001", "internal", "PJSIP/1001,CustomPresence:1001", 4, "Unavailable"},
		{"1002", "internal", "PJSIP/1002,CustomPresence:1002", 4, "Unavailable"},
		{"1003", "internal", "PJSIP/1003,CustomPresence:1003", 4, "Unavailable"},
		{"1901", "internal", "PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001", 4, "Unavailable"},
		{"1903", "internal", "Custom:ho1903a&Custom:ho1903b,CustomPresence:1003", 1, "InUse"},
	}
	srv.SetHints(base...)
	nc, read := login(t, srv)
	read() // FullyBooted
	burst := func(phase int, hs ...Hint) {
		t.Helper()
		srv.Reload(hs...)
		if len(want[phase]) < len(hs) {
			t.Fatalf("phase %d: %d recorded frames", phase, len(want[phase]))
		}
		for i, w := range want[phase][:len(hs)] {
			if got := read(); got != w {
				t.Fatalf("phase %d frame %d:\nrecorded %q\nfake     %q", phase, i, w, got)
			}
		}
	}
	burst(0, append(slices.Clone(base),
		Hint{"1951", "internal", "PJSIP/1001,CustomPresence:1001", 4, "Unavailable"},
		Hint{"1953", "internal", "Custom:rec1953,CustomPresence:1003", 0, "Idle"},
		Hint{"1954", "internal", "PJSIP/1003,CustomPresence:1003", 4, "Unavailable"})...)
	srv.SetHintStatus("1953", "internal", 1, "InUse") // devstate change Custom:rec1953 INUSE
	if got := read(); got != want[0][8] {
		t.Fatalf("device change: recorded %q, fake %q", want[0][8], got)
	}
	phase1 := append(slices.Clone(base),
		Hint{"1951", "internal", "Custom:rec1953,CustomPresence:1001", 1, "InUse"},
		Hint{"1952", "internal", "PJSIP/1002,CustomPresence:1002", 4, "Unavailable"},
		Hint{"1954", "internal", "PJSIP/1003&PJSIP/1002,CustomPresence:1002", 4, "Unavailable"})
	burst(1, phase1...)
	// The changed 1951 keeps its old state in the list (Unavailable).
	_, _ = nc.Write([]byte("Action: ExtensionStateList\r\nActionID: esl-after\r\n\r\n"))
	read()
	var list []string
	for {
		f := read()
		if strings.Contains(f, "ExtensionStateListComplete") {
			break
		}
		list = append(list, f)
	}
	if len(list) != 8 || !strings.Contains(list[5], "Exten: 1951\r\nContext: internal\r\nHint: Custom:rec1953,CustomPresence:1001\r\nStatus: 4\r\n") {
		t.Fatalf("list after the reload: %q", list)
	}
	burst(2, phase1...)
	burst(3, base...)
}
