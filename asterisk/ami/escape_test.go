package ami

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/presenced/presenced/asterisk/ami/amitest"
)

func TestUnescapeC(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain ü 日本", "plain ü 日本"},
		{`Büro \"日本\" it\'s\\ok\?\t(tab)`, "Büro \"日本\" it's\\ok?\t(tab)"},
		{`line1 \"quoted\" it\'s ok\? C:\\dir\\n\tTAB\nline2`, "line1 \"quoted\" it's ok? C:\\dir\\n\tTAB\nline2"},
		{`one\rtwo`, "one\rtwo"},
		{`\a\b\f\v`, "\a\b\f\v"},
		{`not \x an escape`, `not \x an escape`},
		{`trailing \`, `trailing \`},
		{`${SHELL(id)}, end`, `${SHELL(id)}, end`},
	} {
		if got := unescapeC(tc.in); got != tc.want {
			t.Errorf("unescapeC(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRecordedEscaping reads the bytes a real Asterisk 22 sent
// (BEHAVIOUR.md 4.12) with the feed's own frame reader: every
// PresenceStateChange, unescaped, must read exactly as the raw
// PresenceStatus Asterisk sent for the same write.
func TestRecordedEscaping(t *testing.T) {
	for _, name := range []string{"ami-presence-escaping.txt", "ami-presence-escaping-2.txt"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("../../testdata/asterisk/transcripts/" + name)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(bytes.NewReader(raw))
			if _, err := br.ReadString('\n'); err != nil { // the banner
				t.Fatal(err)
			}
			type text struct{ status, subtype, message string }
			statuses := map[text]bool{}
			var changes []text
			for {
				frame, err := readFrame(br)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				m, err := parseFrame(frame)
				if err != nil {
					t.Fatalf("frame %q: %v", frame, err)
				}
				switch m.Field("Event") {
				case "PresenceStatus":
					statuses[text{m.Field("Status"), m.Field("Subtype"), m.Field("Message")}] = true
				case "PresenceStateChange":
					if m.Field("ActionID") == "" { // list entries have no PresenceStatus beside them
						changes = append(changes, text{m.Field("Status"), unescapeC(m.Field("Subtype")), unescapeC(m.Field("Message"))})
					}
				}
			}
			if len(changes) == 0 {
				t.Fatal("no PresenceStateChange in the recording")
			}
			special := 0
			for _, c := range changes {
				if !statuses[c] {
					t.Errorf("PresenceStateChange unescaped to %q, which no PresenceStatus of the recording shows", c)
				}
				if strings.ContainsAny(c.subtype+c.message, "\"'?\\\t\n\r") {
					special++
				}
			}
			if special == 0 {
				t.Error("the recording holds no text that needs escaping: the test proves nothing")
			}
		})
	}
}

// What Asterisk escapes, unescaped, is the text again; and any frame value
// unescapes without a panic.
func FuzzUnescapeC(f *testing.F) {
	for _, s := range []string{"", `a "b" it's?`, "tab\tnl\ncr\r", `C:\dir\n`, "ü 日本 \\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeC(amitest.EscapeC(s)); got != s {
			t.Fatalf("unescapeC(EscapeC(%q)) = %q", s, got)
		}
		_ = unescapeC(s)
	})
}
