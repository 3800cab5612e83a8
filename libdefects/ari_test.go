package libdefects_test

// These tests pin down why package ari does not use
// github.com/CyCoreSystems/ari/v5 v5.3.1. If a future version fixes them,
// they fail, and the choice can be revisited.

import (
	"testing"

	v5 "github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/stdbus"
)

// An event type the library does not know (Asterisk 22 sends several:
// ChannelToneDetected, ChannelTransfer, CallBroadcast, CallClaimed) decodes
// to a nil event, which the native client hands to its bus anyway; the bus
// then panics, in the client's own goroutine, taking the process down (and,
// were it recovered, leaving the bus's read lock held for ever).
func TestLibraryPanicsOnUnknownEvents(t *testing.T) {
	for _, typ := range []string{"ChannelToneDetected", "ChannelTransfer", "CallBroadcast", "CallClaimed"} {
		e, err := v5.DecodeEvent([]byte(`{"type":"` + typ + `"}`))
		if err == nil || e != nil {
			t.Fatalf("the library now decodes %s", typ)
		}
	}
	bus := stdbus.New()
	bus.Subscribe(nil, v5.Events.All) // not cancelled: the panic leaves the bus's lock held, so Cancel would hang
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		bus.Send(nil) // what the native client's wsRead does after a decode error
		return false
	}()
	if !panicked {
		t.Fatal("the library's bus no longer panics on a nil event")
	}
}

// The bus drops events for a subscriber more than its buffer behind.
func TestLibraryBusDropsEvents(t *testing.T) {
	bus := stdbus.New()
	sub := bus.Subscribe(nil, v5.Events.All)
	defer sub.Cancel()
	for range 1000 {
		e, _ := v5.DecodeEvent([]byte(`{"type":"DeviceStateChanged","device_state":{"name":"PJSIP/1001","state":"INUSE"}}`))
		bus.Send(e)
	}
	got := 0
	for len(sub.Events()) > 0 {
		<-sub.Events()
		got++
	}
	if got == 1000 {
		t.Fatal("the library's bus no longer drops events")
	}
}
