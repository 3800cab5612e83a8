package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/testenv"
)

// await polls hint/get until cond holds.
func awaitHint(t *testing.T, m *Main, ref string, cond func(vars map[string]string) bool) map[string]string {
	t.Helper()
	ast := astemu.New()
	var vars map[string]string
	testenv.Eventually(t, "hint/get "+ref, func() bool {
		vars = hook(t, m, ast, "hint/get", "9999", ref).Vars()
		return cond(vars)
	}, func() string { return fmt.Sprint(vars) })
	return vars
}

// fakeAMI starts a fake AMI in front of an emulated Asterisk.
func fakeAMI(t *testing.T) (*astemu.Asterisk, *amitest.Server) {
	t.Helper()
	srv, err := amitest.New("presenced", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.Attach(astemu.New())
	return srv.Ast, srv
}

// amiEnv is the settings that log presenced in to srv, with extra ones.
func amiEnv(srv *amitest.Server, extra ...string) []string {
	return append([]string{"PRESENCED_AMI_ADDR=" + srv.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=pw"}, extra...)
}

// fakeAsterisk is one emulated Asterisk behind a fake ARI (device
// states) and a fake AMI (hints, presence, calls, voicemail, Originate,
// DPMA), as a real one serves both.
func fakeAsterisk(t *testing.T) (*aritest.Server, *amitest.Server) {
	t.Helper()
	ariSrv := fakeARI(t)
	srv, err := amitest.New("presenced", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.Attach(ariSrv.Ast)
	return ariSrv, srv
}

// ariLogin is the settings that log presenced in to a fake ARI.
func ariLogin(srv *aritest.Server) []string {
	return []string{"PRESENCED_ARI_URL=" + srv.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari"}
}

// openWithAMI opens presenced logged in to srv, with extra variables.
func openWithAMI(t *testing.T, srv *amitest.Server, extra ...string) *Main {
	t.Helper()
	return openMain(t, t.TempDir(), amiEnv(srv, extra...)...)
}

// The running dialplan's hints (AMI) win over extensions.conf, a presence
// change made outside presenced reaches the hint table, and a change made
// while AMI was down is there after the reconnect.
func TestAMIFeedsHints(t *testing.T) {
	srv, err := amitest.New("presenced", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetHints(amitest.Hint{Exten: "2001", Context: "from-internal", App: "PJSIP/2001,CustomPresence:2001", Status: 4, StatusText: "Unavailable"})
	srv.SetPresenceQuietly("CustomPresence:2001", amitest.Presence{State: "away", Message: "lunch"})
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001\n"})
	m := openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"),
		"PRESENCED_AMI_ADDR="+srv.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=s3cret")
	defer m.Close()

	awaitHint(t, m, "2001@from-internal", func(v map[string]string) bool {
		return v["PRESENCED_STATE"] == "away" && v["PRESENCED_MESSAGE"] == "lunch"
	})
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_ERROR"] == "NOT_FOUND" })
	// The feed is up once it has read all Asterisk has (the hints come
	// first): a reload before that reads extensions.conf.
	testenv.Eventually(t, "the AMI feed up", func() bool { up, _ := m.ami.Status(); return up })
	if err := m.ReloadHints(); err != nil { // AMI is up: its hints stay
		t.Fatal(err)
	}
	awaitHint(t, m, "1001@internal", func(v map[string]string) bool { return v["PRESENCED_ERROR"] == "NOT_FOUND" })

	srv.SetPresence("CustomPresence:2001", amitest.Presence{State: "dnd", Subtype: "meeting", Message: "until 3"})
	awaitHint(t, m, "2001@from-internal", func(v map[string]string) bool {
		return v["PRESENCED_STATE"] == "dnd" && v["PRESENCED_SUBTYPE"] == "meeting"
	})
	srv.Drop()
	srv.SetPresenceQuietly("CustomPresence:2001", amitest.Presence{State: "chat"})
	awaitHint(t, m, "2001@from-internal", func(v map[string]string) bool { return v["PRESENCED_STATE"] == "chat" })
}

func TestAMIConfig(t *testing.T) {
	c, err := LoadConfig([]string{"PRESENCED_AMI_ADDR="})
	if err != nil || c.AMIAddr != "" {
		t.Fatalf("empty AMI address: %q %v", c.AMIAddr, err)
	}
	c, _ = LoadConfig(nil)
	if c.AMIAddr != "127.0.0.1:5038" {
		t.Fatalf("default AMI address %q", c.AMIAddr)
	}
	if _, err := LoadConfig([]string{"PRESENCED_AMI_SECRET=a\r\nAction: Originate"}); err == nil {
		t.Fatal("a secret with a line break accepted")
	}
}

// With AMI, a timed presence ends in Asterisk by itself, at its time: the
// revert is written with Setvar and confirmed with Getvar.
func TestTimedPresenceEndsOverAMI(t *testing.T) {
	ast, srv := fakeAMI(t)
	m := openWithAMI(t, srv)
	defer m.Close()
	hook(t, m, ast, "presence/set", "1001", "", "available")
	if c := hook(t, m, ast, "presence/set?for=1s", "1001", "", "away", "", "back in a second"); c.Var("PRESENCED_RESULT") != "OK" {
		t.Fatalf("timed set: %v", c.Vars())
	}
	testenv.Eventually(t, "the timed presence ending in Asterisk", func() bool {
		v, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,value)")
		return v == "available"
	})
	found := false
	for _, a := range srv.Actions() {
		found = found || a == "Setvar"
	}
	if !found {
		t.Fatalf("no Setvar among %v", srv.Actions())
	}
}

// A timed presence that ends while AMI is away is written when it is back.
func TestPendingPresenceFlushedWhenAMIReturns(t *testing.T) {
	ast, srv := fakeAMI(t)
	srv.SetSecret("not yet") // AMI refuses presenced for now
	m := openWithAMI(t, srv)
	defer m.Close()
	hook(t, m, ast, "presence/set", "1001", "", "chat")
	hook(t, m, ast, "presence/set?for=1s", "1001", "", "dnd")
	testenv.Eventually(t, "the timer ending while AMI is away (pending)", func() bool {
		v, pending, _ := m.svc.Lookup("1001")
		return v.State.String() == "chat" && pending
	})
	if v, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,value)"); v != "dnd" {
		t.Fatalf("Asterisk holds %q before AMI is back", v)
	}
	srv.SetSecret("pw")
	testenv.Eventually(t, "the pending presence written when AMI came back", func() bool {
		v, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,value)")
		return v == "chat"
	})
}

// PUT /v1/presence/{user}: with AMI the write is made and confirmed (200);
// without it, it waits (202) and goes out at the user's next hook.
func TestRESTPresenceWrite(t *testing.T) {
	ast, srv := fakeAMI(t)
	m := openWithAMI(t, srv)
	defer m.Close()
	testenv.Eventually(t, "AMI up", func() bool { ok, _ := m.ami.Status(); return ok })
	put := func(m *Main, body string) int {
		req, _ := http.NewRequest("PUT", "http://"+m.http.Addr().String()+"/v1/presence/1001", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := put(m, `{"state":"xa","message":"on leave, back Monday"}`); st != 200 {
		t.Fatalf("PUT with AMI: %d", st)
	}
	if msg, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message)"); msg != "on leave, back Monday" {
		t.Fatalf("Asterisk holds %q", msg)
	}
	noAMI := openMain(t, t.TempDir(), "PRESENCED_AMI_ADDR=")
	defer noAMI.Close()
	if st := put(noAMI, `{"state":"away"}`); st != 202 {
		t.Fatalf("PUT without AMI: %d", st)
	}
	if c := hook(t, noAMI, ast, "presence/get", "1001"); c.Var("PRESENCED_STATE") != "away" {
		t.Fatalf("the pending write did not go out at the next hook: %v", c.Vars())
	}
}
