package hints_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

// The hand-made encoding of a provider's presence is json.Marshal's, byte
// for byte: log entries written by either compare equal (watch.Same).
func FuzzPresenceJSON(f *testing.F) {
	for _, s := range []string{"", "Lunch", `say "hi" <b>&amp;</b> \ it's?`, "tab\tnl\ncr\r\b\f\x00\x1f\x7f", "ü 日本 \u2028\u2029", "\xff\xfe bad", "\xed\xa0\x80"} {
		f.Add(s, s+"!", uint8(3), false, int64(0))
	}
	f.Add("", "Lunch", uint8(4), false, int64(1796000000123456789))
	f.Fuzz(func(t *testing.T, sub, msg string, st uint8, invalid bool, expires int64) {
		p := hints.ProviderPresence{Value: presence.Value{State: presence.State(st % 9), Subtype: sub, Message: msg}, Invalid: invalid}
		if expires != 0 {
			p.Value.Expires = time.Unix(0, expires).UTC()
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Skip()
		}
		if got := p.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}
