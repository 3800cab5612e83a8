package dpma

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

type fakePresence struct{ by map[string]presence.Value }

func (f *fakePresence) Get(user string) (presence.Value, bool) { v, ok := f.by[user]; return v, ok }

func (f *fakePresence) Set(_ context.Context, user string, v presence.Value) (presence.Value, bool, error) {
	if err := v.Validate(); err != nil {
		return presence.Value{}, false, err
	}
	f.by[user] = v
	return v, false, nil
}

type fakeHints struct{}

func (fakeHints) Get(context, exten string) (hints.State, bool) {
	if exten == "1001" && context == "internal" {
		return hints.State{Hint: hints.Hint{Exten: "1001", Context: "internal"}, Extension: hints.ExtInUse}, true
	}
	return hints.State{}, false
}

func newBridge() *Bridge {
	return New(Config{Presence: &fakePresence{by: map[string]presence.Value{}}, Hints: fakeHints{}})
}

func answer(b *Bridge, method, params string) string {
	out, _ := json.Marshal(b.Answer(context.Background(), method, "JSON", params))
	return string(out)
}

func TestMethods(t *testing.T) {
	b := newBridge()
	for _, c := range []struct{ method, params, want string }{
		{MethodGet, `{"user":"1001"}`, `{"user":"1001","presence":{"state":"not_set"}}`},
		{MethodSet, `{"user":"1001","state":"DND","message":"focus"}`, `{"user":"1001","presence":{"state":"dnd","message":"focus"}}`},
		{MethodGet, `{"user":"1001"}`, `{"user":"1001","presence":{"state":"dnd","message":"focus"}}`},
		{MethodHints, `{"hints":["1001@internal","1002"]}`, `{"hints":[{"exten":"1001","context":"internal","state":"InUse","presence":{"state":"not_set"}}]}`},
		{MethodSubscribe, `{"phonename":"alice","user":"1001","hints":["1001@internal"]}`, `{"subscribed":true}`},
		{MethodSet, `{"user":"1001","state":"away","message":"` + strings.Repeat("x", 300) + `"}`, `{"error":{"code":"TOO_LONG"`},
		{MethodSet, `{"user":"1001"`, `{"error":{"code":"INVALID_ARGUMENT"`},
		{MethodSubscribe, `{"phonename":"a b"}`, `{"error":{"code":"INVALID_ARGUMENT"`},
		{MethodHints, `{"hints":["@x"]}`, `{"error":{"code":"INVALID_ARGUMENT"`},
		{"presenced.nothing", `{}`, `{"error":{"code":"NOT_FOUND"`},
	} {
		if got := answer(b, c.method, c.params); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s %s: %s, want %s", c.method, c.params, got, c.want)
		}
	}
	if got, _ := json.Marshal(b.Answer(context.Background(), MethodGet, "XML", `<x/>`)); !strings.Contains(string(got), "INVALID_ARGUMENT") {
		t.Errorf("XML: %s", got)
	}
}

// Whatever a phone app sends: an answer that is one line of JSON (it goes
// in one AMI field), and no change unless the answer says so.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{`{"user":"1001","state":"away"}`, `{"phonename":"x","hints":["1001"]}`, `{"hints":null}`, `{`, `"x"`, `{"user":"\u0000"}`} {
		f.Add(MethodSet, s)
		f.Add(MethodSubscribe, s)
	}
	f.Fuzz(func(t *testing.T, method, params string) {
		b := newBridge()
		out, err := json.Marshal(b.Answer(context.Background(), method, "JSON", params))
		if err != nil || strings.ContainsAny(string(out), "\r\n") {
			t.Fatalf("%q %q: %s %v", method, params, out, err)
		}
		changed := len(b.cfg.Presence.(*fakePresence).by) > 0
		if changed && strings.Contains(string(out), `"error"`) {
			t.Fatalf("%q %q: changed, and answered %s", method, params, out)
		}
	})
}

// A phone app cannot take over another phone's subscription, nor make
// subscriptions without bound.
func TestSubscriptionsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := New(Config{Presence: &fakePresence{by: map[string]presence.Value{}}, Hints: fakeHints{}, Now: func() time.Time { return now }})
	sub := func(phone, user string) string {
		return answer(b, MethodSubscribe, fmt.Sprintf(`{"phonename":%q,"user":%q,"hints":["1001@internal"]}`, phone, user))
	}
	if got := sub("alice-desk", "1001"); got != `{"subscribed":true}` {
		t.Fatal(got)
	}
	// Another user under alice's phone's name: refused while alice's app
	// keeps its subscription.
	if got := sub("alice-desk", "1002"); !strings.Contains(got, "NOT_ALLOWED") {
		t.Fatalf("a take-over: %s", got)
	}
	if got := sub("alice-desk", "1001"); got != `{"subscribed":true}` {
		t.Fatalf("alice renewing: %s", got)
	}
	now = now.Add(subscriptionHold + time.Second)
	if got := sub("alice-desk", "1002"); got != `{"subscribed":true}` {
		t.Fatalf("a phone given to another user after its hold: %s", got)
	}
	// Per phone name, a burst, then limited.
	var limited string
	for range subscribeBurst + 1 {
		limited = sub("bob-desk", "1003")
	}
	if !strings.Contains(limited, "RATE_LIMITED") {
		t.Fatalf("subscribes of one phone not limited: %s", limited)
	}
	// In total: maxPhones.
	b.mu.Lock()
	n := len(b.subs)
	b.mu.Unlock()
	for i := range maxPhones - n {
		if got := sub(fmt.Sprintf("p%d", i), "1001"); got != `{"subscribed":true}` {
			t.Fatalf("phone %d: %s", i, got)
		}
	}
	if got := sub("one-too-many", "1001"); !strings.Contains(got, "UNAVAILABLE") {
		t.Fatalf("phone %d: %s", maxPhones+1, got)
	}
	// Subscriptions not renewed make room.
	now = now.Add(subscriptionHold)
	if got := sub("one-too-many", "1001"); got != `{"subscribed":true}` {
		t.Fatalf("after the others lapsed: %s", got)
	}
}
