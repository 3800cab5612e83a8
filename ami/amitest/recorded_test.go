package amitest

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/astemu"
)

// recordedFrames returns the frames of a recorded AMI session
// (../../testdata/asterisk/transcripts), split on the blank line.
func recordedFrames(t *testing.T, name string) []string {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/asterisk/transcripts/" + name)
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
			nc, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(nc)
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			_, _ = nc.Write([]byte("Action: Login\r\nActionID: login\r\nUsername: ami\r\nSecret: ami\r\n\r\n" +
				"Action: Setvar\r\nActionID: sv\r\nVariable: PRESENCE_STATE(CustomPresence:1003)\r\nValue: " + tc.value + "\r\n\r\n"))
			var got []string
			for len(got) < 5 {
				var f strings.Builder
				for !strings.HasSuffix(f.String(), "\r\n\r\n") {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("after %q: %v", got, err)
					}
					f.WriteString(line)
				}
				got = append(got, f.String())
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
