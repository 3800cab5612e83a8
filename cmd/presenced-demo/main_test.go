package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/testenv"
)

// The demo starts presenced against the emulated Asterisk, labelled a
// demo on every door, with phones that ring; it stops with its context.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "presenced")
	if out, err := exec.Command("go", "build", "-o", bin, "../presenced").CombinedOutput(); err != nil {
		t.Fatalf("building presenced: %v\n%s", err, out)
	}
	httpAddr, agiAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs strings.Builder
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-presenced", bin, "-http", httpAddr, "-agi", agiAddr}, &out, &logs) }()
	base := "http://" + httpAddr
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	testenv.Eventually(t, "presenced answers as a demo", func() bool {
		resp, body := get("/v1/whoami")
		return resp != nil && resp.Header.Get("Presenced-Demo") != "" && strings.Contains(body, `"demo":true`)
	})
	if _, body := get("/healthz"); !strings.Contains(body, "demo") {
		t.Errorf("/healthz: %q", body)
	}
	if _, body := get("/"); !strings.Contains(body, `id="demo"`) {
		t.Error("the board has no demo banner")
	}
	// Every user's hint, once presenced has read the emulated AMI.
	var hints string
	testenv.Eventually(t, fmt.Sprint(len(users), " hints"), func() bool {
		_, hints = get("/v1/hints")
		return strings.Count(hints, `"exten"`) == len(users)
	}, func() string { return hints })
	// A phone rings, sooner or later, and the call is on its line.
	testenv.Eventually(t, "a call on some phone", func() bool {
		_, body := get("/v1/calls")
		var v struct{ Calls []struct{ Direction string } }
		return json.Unmarshal([]byte(body), &v) == nil && len(v.Calls) > 0 && v.Calls[0].Direction == "incoming"
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop")
	}
	if !strings.Contains(out.String(), "presenced DEMO") {
		t.Errorf("the demo's words: %s", out.String())
	}
}
