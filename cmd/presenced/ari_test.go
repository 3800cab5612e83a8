package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/presenced/presenced/ari/aritest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/watch"
)

func openWithARI(t *testing.T, srv *aritest.Server, password string) *Main {
	t.Helper()
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001\n"})
	return openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"),
		"PRESENCED_ARI_URL="+srv.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD="+password)
}

// Device states flow from ARI into hints; a change made while the
// websocket is down shows after the reconnect, as exactly one change; an
// Asterisk restart is followed by a new subscription, without restarting
// presenced.
func TestARIDeviceStates(t *testing.T) {
	srv, err := aritest.New("ari", "ari")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	m := openWithARI(t, srv, "ari")
	defer m.Close()
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_DEVICE_STATE"] == "NOT_INUSE" })

	srv.SetDevice("PJSIP/1001", "RINGING")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Ringing" })

	sub, _ := m.hub.Subscribe(watch.Filter{Hints: []string{"1001@internal"}}, nil)
	defer sub.Close()
	srv.DropWebsockets()
	srv.SetDevice("PJSIP/1001", "INUSE")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "InUse" })
	if evs := drainSub(sub); len(evs) != 1 || evs[0].Hint.Extension.String() != "InUse" {
		t.Fatalf("watchers got %d changes for one device change: %+v", len(evs), evs)
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.Subscriptions("presenced")) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not resubscribed after the restart: %v", srv.Subscriptions("presenced"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Idle" })
}

// DND shows on the hint through the DND device; set while ARI was away, it
// is reconciled when ARI comes.
func TestARIDNDDevice(t *testing.T) {
	srv, err := aritest.New("ari", "ari")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	srv.SetPassword("not yet")
	m := openWithARI(t, srv, "ari")
	defer m.Close()
	ast := astemu.New()
	if c := hook(t, m, ast, "dnd/on", "1001"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("dnd/on with ARI away: %v", c.Vars())
	}
	srv.SetPassword("ari")
	for deadline := time.Now().Add(10 * time.Second); srv.Device("Stasis:presenced-dnd-1001") != "BUSY"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("DND device not reconciled")
		}
	}
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Busy" })
	hook(t, m, ast, "dnd/off", "1001")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Idle" })
	if got := srv.Device("Stasis:presenced-dnd-1001"); got != "INVALID" {
		t.Fatalf("DND device after dnd/off: %s", got)
	}
}
