package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/testenv"
)

// A desk phone's action URLs, end to end (one emulated Asterisk behind
// the fake ARI and the fake AMI): the phone's DND key sets presence dnd
// and the DND device (BUSY on ARI: the BLF lamp), a watcher sees it, and
// off brings back what was before; call events become "phone" events for
// watchers of the user; a phone token cannot act for another user, a
// read token cannot act at all; unknown events and parameters are 400.
func TestBinaryPhoneActionURLs(t *testing.T) {
	bin := buildBinary(t)
	ariSrv, srv := fakeAsterisk(t)
	ast := ariSrv.Ast
	ariSrv.SetDevice("PJSIP/1001", "NOT_INUSE")
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001", StatusText: "Idle"},
		amitest.Hint{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", StatusText: "Idle"})
	phonesFile := filepath.Join(t.TempDir(), "phones")
	if err := os.WriteFile(phonesFile, []byte("# mac,user\n00:04:13:AA:BB:CC,1001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const phoneTok, readTok, otherTok = "phone-token-1001-0123456789", "read-token-0123456789abcdef", "phone-token-1002-0123456789"
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, append(ariLogin(ariSrv), "PRESENCED_PHONES="+phonesFile,
		"PRESENCED_API_TOKENS=phone/1001:desk-1001:"+phoneTok+",phone/1002:desk-1002:"+otherTok+",read:crm:"+readTok)...)...)
	defer p.stop(t)
	testenv.Eventually(t, "ready", func() bool { code, _ := p.do(t, "GET", "/readyz", "", readTok); return code == 200 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := watchSSEPath(t, ctx, p, "/v1/events?hints=1001@internal&providers=CustomPresence:1001&access_token="+readTok)
	await := func(what, event string, parts ...string) string {
		t.Helper()
		for {
			select {
			case ev := <-events:
				all := ev.event == event
				for _, part := range parts {
					all = all && strings.Contains(ev.data, part)
				}
				if all {
					return ev.data
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no %s event with %q", what, event, parts)
			}
		}
	}
	phone := func(query, tok string) (int, string) {
		t.Helper()
		return p.do(t, "GET", "/v1/phone-events?"+query, "", tok)
	}
	// The DND key, as a Snom sends it: the token in the URL, the phone by MAC.
	if code, body := phone("event=dnd_on&mac=000413aabbcc&AuthToken="+phoneTok, ""); code != 200 {
		t.Fatalf("dnd_on: %d %s", code, body)
	}
	await("presence dnd", "presence", `"state":"dnd"`)
	if st, _, _, _ := ast.Presence("CustomPresence:1001"); st != "dnd" {
		t.Fatalf("Asterisk holds %q", st)
	}
	testenv.Eventually(t, "the DND device BUSY", func() bool { return ariSrv.Device("Stasis:presenced-dnd-1001") == "BUSY" },
		func() string { return ariSrv.Device("Stasis:presenced-dnd-1001") })
	if code, body := phone("event=dnd_off&user=1001", phoneTok); code != 200 {
		t.Fatalf("dnd_off: %d %s", code, body)
	}
	await("presence back", "presence", `"provider":"CustomPresence:1001"`)
	// A call, as an Auerswald reports it.
	if code, body := phone("event=incoming&user=1001&callId=c-17&accountId=1&number=sip%3A0427466347%40pbx.example.com&name=Bob+Baker&AuthToken="+phoneTok, ""); code != 200 {
		t.Fatalf("incoming: %d %s", code, body)
	}
	await("the call", "phone", `"user":"1001"`, `"event":"incoming"`, `"callId":"c-17"`, `"number":"0427466347"`, `"name":"Bob Baker"`)
	for _, c := range []struct {
		query, tok string
		code       int
	}{
		{"event=dnd_on&user=1002", phoneTok, 403},                   // another user's phone
		{"event=dnd_on&user=1001", otherTok, 403},                   // another phone's token
		{"event=dnd_on&user=1001", readTok, 403},                    // not a phone's
		{"event=dnd_on&user=1001", "", 401},                         // no token
		{"event=dnd_on&user=1001", "nope-nope-nope-nope-nope", 401}, // unknown token
		{"event=reboot&user=1001", phoneTok, 400},                   // unknown event
		{"event=dnd_on&user=1001&colour=red", phoneTok, 400},        // unknown parameter
		{"event=dnd_on&mac=000413aabbcd", phoneTok, 404},            // unknown phone
		{"event=dnd_on&mac=000413aabbcc&user=1002", otherTok, 400},  // MAC and user disagree
		{"event=incoming&user=1001&name=a%0Ab", phoneTok, 400},      // a line break in a name
		{"event=dnd_on&user=1001%26PJSIP%2Fevil", phoneTok, 400},    // hostile user
	} {
		if code, body := phone(c.query, c.tok); code != c.code {
			t.Errorf("%s (token %q): %d %s, want %d", c.query, c.tok, code, body, c.code)
		}
	}
	// The phone token reads nothing else.
	if code, _ := p.do(t, "GET", "/v1/hints", "", phoneTok); code != 401 && code != 403 {
		t.Fatalf("a phone token read the hints: %d", code)
	}
	if st, _, _, _ := ast.Presence("CustomPresence:1002"); st == "dnd" {
		t.Fatal("1002 was set by a refused request")
	}
}

// Without API tokens, a phone's GET changes nothing (an <img> on any web
// page could send it): it is refused; the same event as a JSON POST from
// a local client is taken.
func TestBinaryPhoneEventsOpenMode(t *testing.T) {
	bin := buildBinary(t)
	ariSrv, srv := fakeAsterisk(t)
	ariSrv.SetDevice("PJSIP/1001", "NOT_INUSE")
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001", StatusText: "Idle"})
	phonesFile := filepath.Join(t.TempDir(), "phones")
	if err := os.WriteFile(phonesFile, []byte("00:04:13:AA:BB:CC,1001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, append(ariLogin(ariSrv), "PRESENCED_PHONES="+phonesFile)...)...)
	defer p.stop(t)
	if code, body := p.do(t, "GET", "/v1/phone-events?event=dnd_on&mac=000413aabbcc", "", ""); code != 403 {
		t.Fatalf("open-mode GET: %d %s", code, body)
	}
	if code, body := p.get(t, "/v1/presence/1001"); code == 200 && strings.Contains(body, `"dnd"`) {
		t.Fatalf("an open-mode GET set DND: %s", body)
	}
	if code, body := p.do(t, "POST", "/v1/phone-events", `{"event":"dnd_on","mac":"000413aabbcc"}`, ""); code != 200 {
		t.Fatalf("open-mode POST: %d %s", code, body)
	}
	if code, body := p.get(t, "/v1/presence/1001"); code != 200 || !strings.Contains(body, `"dnd"`) {
		t.Fatalf("after the POST: %d %s", code, body)
	}
}
