package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/presence"
)

type fakePhones struct {
	mu     sync.Mutex
	dnd    []string
	events []calls.PhoneEvent
	// lookups counts the MAC addresses looked up.
	lookups int
}

func (f *fakePhones) changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dnd) + len(f.events)
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
	f.mu.Lock()
	f.lookups++
	f.mu.Unlock()
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
		if w.Code != 200 && w.Code != 400 && w.Code != 401 && w.Code != 403 && w.Code != 404 && w.Code != 429 {
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

// A GET never changes state without a token: in open mode an <img> on
// any web page would set DND for everyone. Open mode takes phone events
// as a JSON POST, refused cross-site like every other write.
func TestPhoneEventsOpenMode(t *testing.T) {
	fp := &fakePhones{}
	s, _ := startWith(t, Config{Phones: fp})
	for _, path := range []string{"/v1/phone-events?event=dnd_on&user=1001", "/v1/phone-events?event=incoming&user=1001&number=1002"} {
		if a := send(t, s, "GET", path, ""); a.status != 403 {
			t.Errorf("open mode GET %s: %d", path, a.status)
		}
	}
	if fp.changes() != 0 {
		t.Fatal("an open-mode GET changed state")
	}
	body := `{"event":"dnd_on","user":"1001"}`
	if a := send(t, s, "POST", "/v1/phone-events", body, "Content-Type", "text/plain"); a.status != 415 {
		t.Errorf("a form's POST: %d", a.status)
	}
	if a := send(t, s, "POST", "/v1/phone-events", body, "Content-Type", ctJSON, "Origin", "https://evil.example"); a.status != 403 {
		t.Errorf("a cross-site POST: %d", a.status)
	}
	if fp.changes() != 0 {
		t.Fatal("a refused POST changed state")
	}
	if a := send(t, s, "POST", "/v1/phone-events", body, "Content-Type", ctJSON); a.status != 200 {
		t.Fatalf("a local POST: %d %s", a.status, a.code)
	}
	if a := send(t, s, "POST", "/v1/phone-events", `{"event":"dnd_on","user":"1001","extra":1}`, "Content-Type", ctJSON); a.status != 400 {
		t.Fatalf("a POST with an unknown member: %d", a.status)
	}
	if fp.changes() != 1 || fp.dnd[0] != "1001=on" {
		t.Fatalf("after the POST: %v", fp.dnd)
	}
}

// The token is checked before the MAC address is looked up (no oracle of
// which phones exist), and a token's phone events are limited: it cannot
// push the change log's history out of its retention.
func TestPhoneEventsTokenFirstAndLimited(t *testing.T) {
	fp := &fakePhones{}
	toks, err := ParseTokens("phone/1001:desk:phone-token-0123456789,read:board:read-token-0123456789", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := startWith(t, Config{Phones: fp, Tokens: toks})
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		if a := send(t, s, "GET", "/v1/phone-events?event=dnd_on&mac=000413aabbcc&AuthToken="+tok, ""); a.status != 401 {
			t.Errorf("token %q: %d", tok, a.status)
		}
	}
	if a := send(t, s, "GET", "/v1/phone-events?event=dnd_on&mac=000413aabbcc", "", "Authorization", "Bearer read-token-0123456789"); a.status != 403 {
		t.Errorf("a read token: %d", a.status)
	}
	if fp.lookups != 0 {
		t.Fatalf("%d MAC lookups before a token was accepted", fp.lookups)
	}
	limited := answer{}
	for i := range phoneBurst + 1 {
		a := send(t, s, "GET", fmt.Sprintf("/v1/phone-events?event=incoming&mac=000413aabbcc&callId=c%d&number=1002&AuthToken=phone-token-0123456789", i), "")
		if a.status != 200 {
			limited = a
			break
		}
	}
	if limited.status != 429 || limited.code != "RATE_LIMITED" || limited.header.Get("Retry-After") == "" {
		t.Fatalf("the %dth event of one token: %+v", phoneBurst+1, limited)
	}
	if n := fp.changes(); n != phoneBurst {
		t.Fatalf("%d events taken, want %d", n, phoneBurst)
	}
}
