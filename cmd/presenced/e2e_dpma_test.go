package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/testenv"
)

// Digium phone apps over DPMA, end to end against the fake AMI speaking
// DPMA's frames: presenced registers its four methods, answers get, set
// (reaching Asterisk's CustomPresence), hints and subscribe, pushes a
// change to the subscribed phone, answers malformed parameters with an
// error, and registers again after the AMI connection is dropped.
func TestBinaryDPMA(t *testing.T) {
	bin := buildBinary(t)
	ast, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"})
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, "PRESENCED_DPMA=on")...)
	defer p.stop(t)
	want := []string{"presenced.hints", "presenced.presence.get", "presenced.presence.set", "presenced.subscribe"}
	registered := func(what string) {
		t.Helper()
		testenv.Eventually(t, what, func() bool { return slices.Equal(srv.DPMARegistered(), want) },
			func() string { return fmt.Sprint("registered ", srv.DPMARegistered()) })
	}
	registered("at start")
	ask := func(method, params string) string {
		t.Helper()
		id := srv.PhoneRequest(method, params)
		if id == "" {
			t.Fatalf("%s is not registered", method)
		}
		r, ok := srv.DPMAResponse(id, 10*time.Second)
		if !ok {
			t.Fatalf("%s %s: no response", method, params)
		}
		return r
	}
	if r := ask("presenced.subscribe", `{"phonename":"alice","user":"1001","hints":["1001@internal"]}`); r != `{"subscribed":true}` {
		t.Fatalf("subscribe: %s", r)
	}
	if r := ask("presenced.presence.set", `{"user":"1001","state":"away","message":"Lunch"}`); r != `{"user":"1001","presence":{"state":"away","message":"Lunch"}}` {
		t.Fatalf("set: %s", r)
	}
	if st, _, msg, _ := ast.Presence("CustomPresence:1001"); st != "away" || msg != "Lunch" {
		t.Fatalf("Asterisk holds %q %q", st, msg)
	}
	if r := ask("presenced.presence.get", `{"user":"1001"}`); r != `{"user":"1001","presence":{"state":"away","message":"Lunch"}}` {
		t.Fatalf("get: %s", r)
	}
	testenv.Eventually(t, "1001's presence pushed to alice", func() bool {
		return slices.ContainsFunc(srv.DPMASentTo("alice"), func(m amitest.DPMASent) bool {
			return m.Method == "presenced.update" && strings.Contains(m.Message, `"type":"presence","user":"1001","presence":{"state":"away","message":"Lunch"}`)
		})
	}, func() string { return fmt.Sprintf("%+v", srv.DPMASentTo("alice")) })
	if r := ask("presenced.hints", `{"hints":["1001@internal","1999@internal"]}`); !strings.HasPrefix(r, `{"hints":[{"exten":"1001","context":"internal","state":`) || strings.Contains(r, "1999") {
		t.Fatalf("hints: %s", r)
	}
	for params, code := range map[string]string{
		`{"user":`:                           "INVALID_ARGUMENT",
		`{"user":"1001&PJSIP/evil"}`:         "INVALID_USER",
		`{"user":"1001","state":"sleeping"}`: "INVALID_STATE",
		`["not","an","object"]`:              "INVALID_ARGUMENT",
	} {
		if r := ask("presenced.presence.set", params); !strings.Contains(r, `"code":"`+code+`"`) {
			t.Errorf("set %s: %s", params, r)
		}
	}
	if r := ask("presenced.subscribe", `{"phonename":"alice\u0000","hints":[]}`); !strings.Contains(r, `"error"`) {
		t.Errorf("a bad phone name: %s", r)
	}
	if id := srv.PhoneRequest("presenced.unknown", `{}`); id != "" {
		t.Fatal("an unregistered method reached presenced")
	}
	// A dropped connection: registered again.
	srv.Drop()
	registered("after the reconnect")
	if r := ask("presenced.presence.get", `{"user":"1001"}`); !strings.Contains(r, `"state":"away"`) {
		t.Fatalf("get after the reconnect: %s", r)
	}
}
