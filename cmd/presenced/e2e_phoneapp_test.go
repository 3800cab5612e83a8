package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/testenv"
)

// The sample phone app (phoneapp/) in Node, against presenced and the
// fake AMI speaking DPMA: this test starts both and a loopback bridge
// standing in for the phone's SIP path to DPMA, then runs the app's Node
// tests (phoneapp/test). Without node the test is skipped, unless
// PRESENCED_PHONEAPP_TESTS=require (CI).
func TestPhoneAppInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("PRESENCED_PHONEAPP_TESTS") == "require" {
			t.Fatal("node is needed for the phone app's tests")
		}
		t.Skip("node not found")
	}
	bin := buildBinary(t)
	ast, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"},
		amitest.Hint{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", StatusText: "Idle"})
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, "PRESENCED_DPMA=on")...)
	defer p.stop(t)
	testenv.Eventually(t, "presenced registering its DPMA methods", func() bool { return len(srv.DPMARegistered()) >= 4 })
	mux := http.NewServeMux()
	// A phone's pbx.request: a DPMAMessage, and DPMA's answer as the
	// phone app gets it (onSuccess with the response as result).
	mux.HandleFunc("POST /request", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method     string          `json:"method"`
			Parameters json.RawMessage `json:"parameters"`
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", 400)
			return
		}
		id := srv.PhoneRequest(req.Method, string(req.Parameters))
		if id == "" {
			http.Error(w, "method not registered", 404)
			return
		}
		res, ok := srv.DPMAResponse(id, 10*time.Second)
		if !ok {
			http.Error(w, "no response", http.StatusGatewayTimeout)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":` + res + `}`))
	})
	// DPMAMessageSend to a phone, from the after-th on.
	mux.HandleFunc("GET /pushes", func(w http.ResponseWriter, r *http.Request) {
		sent := srv.DPMASentTo(r.URL.Query().Get("phone"))
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		out := []map[string]string{}
		for i := min(after, len(sent)); i < len(sent); i++ {
			out = append(out, map[string]string{"method": sent[i].Method, "message": sent[i].Message})
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	// What Asterisk holds, and a change made there (another phone).
	mux.HandleFunc("GET /asterisk", func(w http.ResponseWriter, r *http.Request) {
		st, sub, msg, _ := ast.Presence(r.URL.Query().Get("provider"))
		_ = json.NewEncoder(w).Encode(map[string]string{"state": st, "subtype": sub, "message": msg})
	})
	mux.HandleFunc("POST /asterisk", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		srv.SetPresence(q.Get("provider"), amitest.Presence{State: q.Get("state"), Message: q.Get("message")})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	cmd := exec.Command(node, "--test", filepath.Join("..", "..", "phoneapp", "test"))
	cmd.Env = append(os.Environ(), "PRESENCED_DPMA_BRIDGE=http://"+ln.Addr().String())
	out, err := cmd.CombinedOutput()
	t.Logf("node --test phoneapp/test:\n%s", out)
	if err != nil {
		t.Fatalf("the phone app's tests failed: %v", err)
	}
}
