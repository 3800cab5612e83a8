package httpapi

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/calls"
	"github.com/presenced/presenced/presence"
)

type fakePhones struct {
	mu     sync.Mutex
	dnd    []string
	events []calls.PhoneEvent
}

func (f *fakePhones) SetDND(_ context.Context, user string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dnd = append(f.dnd, user+map[bool]string{true: "=on", false: "=off"}[on])
	return nil
}

func (f *fakePhones) PhoneEvent(e calls.PhoneEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fakePhones) UserOfMAC(mac string) (string, bool) {
	if strings.EqualFold(mac, "000413aabbcc") {
		return "1001", true
	}
	return "", false
}

// Whatever a phone's URL holds: a clear answer, and a change only for a
// valid event of a valid user, with fields that passed their checks.
func FuzzPhoneEvent(f *testing.F) {
	for _, q := range []string{"event=dnd_on&user=1001&AuthToken=phone-token-0123456789", "event=incoming&mac=000413aabbcc&number=sip:1@x&name=A&AuthToken=phone-token-0123456789",
		"event=x", "user=%00", "event=dnd_on&event=dnd_off", "event=connected&user=1001&callId=%ff&AuthToken=phone-token-0123456789", ";;&&=="} {
		f.Add(q)
	}
	toks, err := ParseTokens("phone/1001:desk:phone-token-0123456789", nil)
	if err != nil {
		f.Fatal(err)
	}
	fp := &fakePhones{}
	s := New(Config{Tokens: toks, Phones: fp, Log: zerolog.Nop()})
	f.Fuzz(func(t *testing.T, query string) {
		fp.mu.Lock()
		before := len(fp.dnd) + len(fp.events)
		fp.mu.Unlock()
		r := httptest.NewRequest("GET", "/v1/phone-events", nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		s.phoneEvent(w, r)
		fp.mu.Lock()
		defer fp.mu.Unlock()
		changed := len(fp.dnd)+len(fp.events) != before
		if (w.Code == 200) != changed {
			t.Fatalf("%q: %d, changed %v", query, w.Code, changed)
		}
		if w.Code != 200 && w.Code != 400 && w.Code != 401 && w.Code != 403 && w.Code != 404 {
			t.Fatalf("%q: status %d", query, w.Code)
		}
		if changed && len(fp.events) > 0 {
			e := fp.events[len(fp.events)-1]
			if presence.ValidateUser(e.User) != nil || strings.ContainsAny(e.Number+e.Name+e.CallID, "\r\n") {
				t.Fatalf("%q: %+v", query, e)
			}
		}
	})
}
