package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
)

// Voicemail boxes' counts from AMI in the change log: a watcher's
// snapshot has every box (VoicemailUsersList); a MessageWaiting is one
// "mailbox" event; a count changed while AMI was away is one event after
// the reconnect, and an unchanged box none.
func TestBinaryVoicemail(t *testing.T) {
	bin := buildBinary(t)
	_, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"})
	srv.SetMailbox("1001@default", 0, 0)
	srv.SetMailbox("1002@default", 2, 1)
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv)...)
	defer p.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The first snapshot may come before AMI's list: read until both boxes are known.
	events := watchSSE(t, ctx, p)
	next := func(what string) sseEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event", what)
		}
		return sseEvent{}
	}
	seen := ""
	for !strings.Contains(seen, `"mailbox":"1002@default","new":2,"old":1`) {
		ev := next("the boxes")
		seen += ev.data
	}
	srv.SetMailbox("1001@default", 1, 0)
	ev := next("1001 gets a message")
	for ev.event != "mailbox" {
		ev = next("1001 gets a message")
	}
	if ev.data != `{"mailbox":"1001@default","new":1,"old":0}` {
		t.Fatalf("mailbox event: %s %s", ev.event, ev.data)
	}
	srv.Drop()
	srv.SetMailboxQuietly("1002@default", 0, 3)
	ev = next("1002 changed while AMI was away")
	if ev.event != "mailbox" || ev.data != `{"mailbox":"1002@default","new":0,"old":3}` {
		t.Fatalf("after the reconnect: %s %s", ev.event, ev.data)
	}
	select {
	case ev := <-events:
		t.Fatalf("one more event: %s %s", ev.event, ev.data)
	case <-time.After(2 * time.Second):
	}
}
