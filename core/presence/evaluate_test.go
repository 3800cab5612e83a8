package presence

import (
	"context"
	"strings"
	"testing"
)

type evalAnswer string

func (e evalAnswer) Evaluate(context.Context, string) (string, error) { return string(e), nil }

// Any answer to the one-expression read is a presence or an error, never
// a panic; the recorded answers read as Asterisk meant them.
func FuzzReadEvaluated(f *testing.F) {
	for _, s := range []string{"away,bHVuY2g=,QmFjayBhdCAyLCBtYXliZSAiaXNoIg==", "not_set,,", ",,", ",away", "invalid,,", "dnd,,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := readEvaluated(context.Background(), evalAnswer(s), "CustomPresence:1001", "PRESENCE_STATE(CustomPresence:1001,")
		if err == nil && (strings.Count(s, ",") != 2 || strings.HasPrefix(s, ",")) {
			t.Fatalf("%q read as %+v", s, v)
		}
	})
}

func TestReadEvaluatedRecorded(t *testing.T) {
	v, err := readEvaluated(context.Background(), evalAnswer("away,bHVuY2g=,QmFjayBhdCAyLCBtYXliZSAiaXNoIg=="), "CustomPresence:1001", "PRESENCE_STATE(CustomPresence:1001,")
	if err != nil || v.State != Away || v.Subtype != "lunch" || v.Message != `Back at 2, maybe "ish"` {
		t.Fatalf("%+v %v", v, err)
	}
	if v, err := readEvaluated(context.Background(), evalAnswer("not_set,,"), "", ""); err != nil || v.State != NotSet {
		t.Fatalf("never set: %+v %v", v, err)
	}
	if _, err := readEvaluated(context.Background(), evalAnswer(",,"), "", ""); ErrorCode(err) != CodeUnavailable {
		t.Fatalf("func_presencestate missing: %v", err)
	}
}
