package hints_test

import (
	"encoding/json"
	"reflect"
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
		// Read back, the log's decoder gives what encoding/json gives.
		var viaJSON hints.ProviderPresence
		if err := json.Unmarshal(want, &viaJSON); err != nil {
			t.Fatal(err)
		}
		got, err := hints.DecodeProviderPresence(want)
		if err != nil || !reflect.DeepEqual(got, viaJSON) {
			t.Fatalf("read back %+v (%v), encoding/json %+v", got, err, viaJSON)
		}
	})
}

// The log's decoder of provider presence reads any JSON encoding/json
// reads, as encoding/json does, and refuses what it refuses.
func FuzzPresenceDecode(f *testing.F) {
	for _, s := range []string{`{"presence":{"state":"away","message":"Lunch"}}`, `{"presence":{"state":"dnd"},"invalid":true}`,
		`{"presence":{"message":"x","state":"away"}}`, `{"presence":{"state":"AWAY"}}`, `{"presence":{"state":"away","message":"a\"b"}}`,
		`{"presence":{"state":"away","expires":"2026-12-07T10:00:00Z"}}`, `{"presence":{"state":"away","subtype":""}}`, `{"presence":{"state":"bogus"}}`, `{}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want hints.ProviderPresence
		werr := json.Unmarshal(data, &want)
		got, err := hints.DecodeProviderPresence(data)
		if (err != nil) != (werr != nil) {
			t.Fatalf("error %v, encoding/json %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v, encoding/json %+v", got, want)
		}
	})
}
