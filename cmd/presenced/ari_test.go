package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/views/filter"
)

// fakeARI starts a fake ARI for the test.
func fakeARI(t testing.TB) *aritest.Server {
	t.Helper()
	srv, err := aritest.New("ari", "ari")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

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
	srv := fakeARI(t)
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	m := openWithARI(t, srv, "ari")
	defer m.Close()
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_DEVICE_STATE"] == "NOT_INUSE" })

	srv.SetDevice("PJSIP/1001", "RINGING")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Ringing" })

	// hint/get reads the table, which the hub follows a moment later: the
	// watcher subscribes once the hub has Ringing (else it gets it too).
	testenv.Eventually(t, "the hub having 1001 ringing", func() bool {
		for _, ev := range m.hub.Current() {
			if ev.Kind == hints.KindHint && ev.Key == "1001@internal" && hintOf(ev).Extension.String() == "Ringing" {
				return true
			}
		}
		return false
	})
	sub, _ := m.hub.Subscribe(filter.Spec{Hints: []string{"1001@internal"}}.Watch(""), nil)
	defer sub.Close()
	srv.DropWebsockets()
	srv.SetDevice("PJSIP/1001", "INUSE")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "InUse" })
	if evs := drainSub(sub); len(evs) != 1 || hintOf(evs[0]).Extension.String() != "InUse" {
		t.Fatalf("watchers got %d changes for one device change: %+v", len(evs), evs)
	}

	srv.Restart()
	testenv.Eventually(t, "resubscribed after the restart", func() bool { return len(srv.Subscriptions("presenced")) == 2 },
		func() string { return fmt.Sprint(srv.Subscriptions("presenced")) })
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Idle" })
}

// DND shows on the hint through the DND device; set while ARI was away, it
// is reconciled when ARI comes.
func TestARIDNDDevice(t *testing.T) {
	srv := fakeARI(t)
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	srv.SetPassword("not yet")
	m := openWithARI(t, srv, "ari")
	defer m.Close()
	ast := astemu.New()
	if c := hook(t, m, ast, "dnd/on", "1001"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("dnd/on with ARI away: %v", c.Vars())
	}
	srv.SetPassword("ari")
	testenv.Eventually(t, "the DND device reconciled", func() bool { return srv.Device("Stasis:presenced-dnd-1001") == "BUSY" })
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Busy" })
	hook(t, m, ast, "dnd/off", "1001")
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_HINT_STATE"] == "Idle" })
	if got := srv.Device("Stasis:presenced-dnd-1001"); got != "INVALID" {
		t.Fatalf("DND device after dnd/off: %s", got)
	}
}

// Stasis(presenced,presence/set,,away,,Lunch, back at 2): the hook runs on
// the channel over ARI, the result variables are set on it, and the
// channel continues in the dialplan; errors too.
func TestStasisHooks(t *testing.T) {
	srv := fakeARI(t)
	m := openWithARI(t, srv, "ari")
	defer m.Close()
	testenv.Eventually(t, "the Stasis application connected", func() bool { return srv.Connected("presenced") })
	run := func(caller string, args ...string) aritest.Channel {
		t.Helper()
		id := srv.StartStasis("presenced", caller, args...)
		var ch aritest.Channel
		testenv.Eventually(t, "channel "+id+" continuing", func() bool { ch, _ = srv.ChannelState(id); return ch.Continued },
			func() string { return fmt.Sprintf("%+v", ch) })
		return ch
	}
	ch := run("1001", "presence/set", "", "away", "", "Lunch, back at 2 + \"soon\"")
	if ch.Vars["PRESENCED_RESULT"] != "OK" || ch.Vars["PRESENCED_STATE"] != "away" || ch.Vars["PRESENCED_MESSAGE"] != `Lunch, back at 2 + "soon"` {
		t.Fatalf("vars %v", ch.Vars)
	}
	if msg, _ := srv.Ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message)"); msg != `Lunch, back at 2 + "soon"` {
		t.Fatalf("Asterisk holds %q", msg)
	}
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_STATE"] == "away" })
	ch = run("1001", "presence/set", "", "busy")
	if ch.Vars["PRESENCED_RESULT"] != "ERROR" || ch.Vars["PRESENCED_ERROR"] != "INVALID_STATE" {
		t.Fatalf("error vars %v", ch.Vars)
	}
	ch = run("")
	if ch.Vars["PRESENCED_ERROR"] != "NOT_FOUND" {
		t.Fatalf("no hook: %v", ch.Vars)
	}
	// A rejected write is seen: the read-back on the channel disagrees.
	srv.Ast.RejectPresence = true
	ch = run("1001", "presence/set", "", "dnd")
	srv.Ast.RejectPresence = false
	if ch.Vars["PRESENCED_ERROR"] != "ASTERISK_REJECTED" {
		t.Fatalf("rejected write: %v", ch.Vars)
	}
}

// A caller who hangs up in the middle of a hook: the hook fails, presenced
// keeps no half-written record, and the next hook sees what Asterisk holds.
func TestStasisHangupMidHook(t *testing.T) {
	srv := fakeARI(t)
	m := openWithARI(t, srv, "ari")
	defer m.Close()
	testenv.Eventually(t, "the ARI application connected", func() bool { return srv.Connected("presenced") })
	// Requests of presence/set: 3 reads, the write, 3 read-backs, then the
	// result variables. Hang up right after the write.
	id := srv.StartStasisHangingUp("presenced", "1001", 4, "presence/set", "", "xa")
	testenv.Eventually(t, "the channel gone, neither continued nor given a result", func() bool {
		ch, _ := srv.ChannelState(id)
		return ch.Gone && !ch.Continued && ch.Vars["PRESENCED_RESULT"] == ""
	}, func() string { ch, _ := srv.ChannelState(id); return fmt.Sprintf("%+v", ch) })
	// The read-back cannot succeed on a gone channel, so the record is
	// never updated, whenever the hook finishes failing.
	if cur := m.svc.Current()["1001"]; cur.State.String() == "xa" {
		t.Fatal("a hook cut short left its presence recorded")
	}
	// Asterisk did take the write; the next hook adopts it.
	id = srv.StartStasis("presenced", "1001", "presence/get")
	testenv.Eventually(t, "presence/get continued", func() bool { ch, _ := srv.ChannelState(id); return ch.Continued })
	if ch, _ := srv.ChannelState(id); ch.Vars["PRESENCED_STATE"] != "xa" {
		t.Fatalf("after the hangup: %v", ch.Vars)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	ariSrv := fakeARI(t)
	ariSrv.SetPassword("not yet")
	m := openWithARI(t, ariSrv, "ari")
	defer m.Close()
	base := "http://" + m.http.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\nversion "+buildVersion()+"\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	var code int
	var body string
	// "connecting" before the first attempt fails.
	testenv.Eventually(t, "/readyz showing ARI refusing", func() bool { code, body = get("/readyz"); return strings.Contains(body, `"ari":"not connected: `) },
		func() string { return body })
	if code != 503 || !strings.Contains(body, `"ari":"not connected: `) || !strings.Contains(body, `"ami":"not configured"`) || !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("readyz with ARI refusing: %d %s", code, body)
	}
	ariSrv.SetPassword("ari")
	testenv.Eventually(t, "ready", func() bool { code, body = get("/readyz"); return code == 200 }, func() string { return body })
	hook(t, m, astemu.New(), "presence/set", "1001", "", "away")
	hook(t, m, astemu.New(), "no/such/thing", "1001")
	_, metrics := get("/metrics")
	for _, want := range []string{
		`presenced_hooks_total{command="presence/set",result="OK",transport="fastagi"} 1`,
		`presenced_hooks_total{command="unknown",result="NOT_FOUND",transport="fastagi"} 1`,
		`presenced_ari_connected 1`, `presenced_hints 1`, `presenced_hook_duration_seconds_count{transport="fastagi"} 2`,
		`presenced_watch_dropped_total 0`, `presenced_watch_coalesced_total 0`,
		`presenced_ari_resyncs_total 1`, `presenced_watchers{transport="sse"} 0`, `presenced_watchers{transport="websocket"} 0`,
		`presenced_webhooks 0`, `presenced_webhook_deliveries_total{result="delivered"} 0`, `presenced_webhook_failures_total 0`,
		`presenced_webhook_retries_total 0`, `presenced_webhook_backlog 0`,
		`presenced_build_info{goversion="` + runtime.Version() + `",version="` + buildVersion() + `"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Not loopback without tokens: refused at start.
	cfg := m.Config
	cfg.HTTPListen = "0.0.0.0:0"
	cfg.DataDir = t.TempDir()
	bad := NewMain(cfg, zerolog.Nop())
	err := bad.Open(context.Background())
	_ = bad.Close()
	if err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Fatalf("public HTTP without tokens: %v", err)
	}
}
