package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/dialplan"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/views/filter"
)

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeTree writes files into a new directory and returns its path.
func writeTree(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDialplanHintsAndCheck(t *testing.T) {
	dir := writeTree(t, map[string]string{"users.csv": "extension,devices,name\n1001,,Alice\n1002,PJSIP/1002&PJSIP/1002b,Bob\n"})
	hintsFile := filepath.Join(dir, "presenced-hints.conf")
	if code, _, errOut := runCmd("dialplan", "hints", "--context", "internal", "--csv", filepath.Join(dir, "users.csv"), "--user", "1003", "-o", hintsFile); code != 0 {
		t.Fatalf("hints: %d %s", code, errOut)
	}
	// Relative #include paths resolve against the directory of the file
	// checked, as against Asterisk's configuration directory.
	if err := os.WriteFile(filepath.Join(dir, "extensions.conf"), []byte("[internal]\n#include presenced-hints.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("dialplan", "check", "--json", filepath.Join(dir, "extensions.conf"))
	if code != 0 || errOut != "" {
		t.Fatalf("check: %d %s", code, errOut)
	}
	var got []struct {
		Context, Exten, File string
		Devices, Providers   []string
		Line                 int
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// --user entries first, then the CSV's.
	if len(got) != 3 || got[0].Exten != "1003" || got[2].Exten != "1002" || got[2].Context != "internal" || strings.Join(got[2].Devices, "&") != "PJSIP/1002&PJSIP/1002b&Stasis:presenced-dnd-1002" ||
		got[2].Providers[0] != "CustomPresence:1002" || got[2].File != hintsFile || got[2].Line != 8 {
		t.Fatalf("check --json: %+v", got)
	}
	if code, _, _ := runCmd("dialplan", "hints", "--user", "bad user"); code != 2 {
		t.Fatalf("bad user: exit %d", code)
	}
	if code, out, errOut := runCmd("dialplan", "hints", "--remote", "paris", "--context", "internal", "--user", "2001"); code != 0 ||
		!strings.Contains(out, "exten => 2001,hint,Stasis:presenced-remote-paris-2001,CustomPresence:2001\n") {
		t.Fatalf("--remote: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd("dialplan", "hints", "--remote", "Paris", "--user", "2001"); code != 2 || !strings.Contains(errOut, "site") {
		t.Fatalf("--remote Paris: exit %d %s", code, errOut)
	}
	if code, _, _ := runCmd("dialplan", "check", filepath.Join(dir, "nothere.conf")); code != 2 {
		t.Fatalf("missing file: exit %d", code)
	}
}

func TestDialplanCheckReportsErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{"extensions.conf": "[a]\nexten => 1,hint,1001\nexten => 1,hint,PJSIP/1\n#include gone.conf\n"})
	code, out, errOut := runCmd("dialplan", "check", filepath.Join(dir, "extensions.conf"))
	if code != 1 || !strings.Contains(out, "1 hints, 3 problems (3 errors)") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"extensions.conf:2: error: 1@a: device \"1001\" has no technology", "extensions.conf:3: error: second hint for 1@a", "extensions.conf:4: error: the file \"gone.conf\" was listed as a #include"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in\n%s", want, errOut)
		}
	}
}

// With PRESENCED_DIALPLAN, hint/get answers from the hints of the file,
// with the presence presenced knows.
func TestHintGetFromDialplan(t *testing.T) {
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001&Stasis:presenced-dnd-1001,CustomPresence:1001\n"})
	m := openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"))
	defer m.Close()
	ast := astemu.New()
	hook(t, m, ast, "dnd/on", "1001")
	c := hook(t, m, ast, "hint/get", "1002", "1001@internal")
	if c.Var("PRESENCED_RESULT") != "OK" || c.Var("PRESENCED_HINT_STATE") != "Idle" || c.Var("PRESENCED_DEVICE_STATE") != "UNKNOWN" || c.Var("PRESENCED_STATE") != "dnd" {
		t.Fatalf("hint/get: %v", c.Vars())
	}
	cfg := m.Config
	cfg.Dialplan = filepath.Join(dir, "missing.conf")
	cfg.DataDir = t.TempDir()
	if err := NewMain(cfg, zerolog.Nop()).Open(context.Background()); err == nil || !strings.Contains(err.Error(), "PRESENCED_DIALPLAN") {
		t.Fatalf("missing dialplan: %v", err)
	}
}

// A hook's presence change reaches the hub: the provider's change and the
// hint's.
func TestHookChangesReachTheHub(t *testing.T) {
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"})
	m := openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"))
	defer m.Close()
	sub, snap := m.hub.Subscribe(filter.Spec{Hints: []string{"1001@internal"}, Providers: []string{"CustomPresence:1001"}}.Watch(""), nil)
	defer sub.Close()
	if len(snap.Items) != 1 || hintOf(snap.Items[0]).Extension.String() != "Idle" {
		t.Fatalf("snapshot %+v", snap.Items)
	}
	hook(t, m, astemu.New(), "presence/set", "1001", "", "xa", "", "on holiday")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := sub.Next(ctx)
	if err != nil || len(evs) != 2 || evs[0].Kind != hints.KindPresence || hintOf(evs[1]).Presence.Message != "on holiday" || evs[1].Seq <= evs[0].Seq {
		t.Fatalf("events %+v, %v", evs, err)
	}
}

// ReloadHints (SIGHUP) puts new and changed hints and removes gone ones,
// and publishes exactly those changes; an unreadable file changes nothing.
func TestReloadHints(t *testing.T) {
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001\nexten => 1002,hint,PJSIP/1002\nexten => 1003,hint,PJSIP/1003\n"})
	file := filepath.Join(dir, "extensions.conf")
	m := openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+file)
	defer m.Close()
	sub, snap := m.hub.Subscribe(watch.Filter{All: true}, nil)
	defer sub.Close()
	if len(snap.Items) != 3 {
		t.Fatalf("snapshot %d items", len(snap.Items))
	}
	if err := os.WriteFile(file, []byte("[internal]\nexten => 1001,hint,PJSIP/1001\nexten => 1002,hint,,CustomPresence:1002\nexten => 1004,hint,PJSIP/1004\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.ReloadHints(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ev := range drainSub(sub) {
		got[ev.Key] = hintOf(ev).App()
		if hintOf(ev).Removed {
			got[ev.Key] = "removed"
		}
	}
	want := map[string]string{"1002@internal": ",CustomPresence:1002", "1004@internal": "PJSIP/1004", "1003@internal": "removed"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := m.ReloadHints(); err == nil {
		t.Fatal("reload of a missing file succeeded")
	}
	if n := len(m.hints.Snapshot()); n != 3 {
		t.Fatalf("%d hints after a failed reload", n)
	}
}

func drainSub(s *watch.Sub) []*watch.Event {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out []*watch.Event
	for {
		evs, err := s.Next(ctx)
		if err != nil {
			return out
		}
		out = append(out, evs...)
	}
}

// --help is an answer (exit 0, on standard output); a directory given as
// the file is a usage error naming the file to give.
func TestDialplanHelpAndDirectory(t *testing.T) {
	for _, args := range [][]string{{"dialplan", "--help"}, {"dialplan", "help"}, {"dialplan", "check", "--help"}, {"dialplan", "hints", "-h"}, {"--help"}} {
		code, out, errOut := runCmd(args...)
		if code != 0 || !strings.Contains(out, "usage") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	dir := t.TempDir()
	code, _, errOut := runCmd("dialplan", "check", dir)
	if code != 2 || !strings.Contains(errOut, dir+" is a directory") || !strings.Contains(errOut, filepath.Join(dir, "extensions.conf")) {
		t.Errorf("directory: exit %d, %q", code, errOut)
	}
}

// extensions.conf.sample passes presenced's own check, and every hook it
// calls exists (a feature code calling a hook that does not exist would
// only say so on the phone).
func TestSampleDialplan(t *testing.T) {
	sample := filepath.Join("..", "..", "extensions.conf.sample")
	if code, out, errOut := runCmd("dialplan", "check", sample); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	hooks := regexp.MustCompile(`agi://127\.0\.0\.1:4573/([a-z/]+)`).FindAllStringSubmatch(string(raw), -1)
	if len(hooks) < 10 {
		t.Fatalf("only %d hooks in the sample", len(hooks))
	}
	for _, h := range hooks {
		if !dialplan.IsCommand(h[1]) {
			t.Errorf("the sample calls %q, which is no hook", h[1])
		}
	}
	// Forwards are dialled in a context that reaches no feature code: it
	// includes nothing, and none of its extensions starts with * or #.
	m := regexp.MustCompile(`Dial\(Local/\$\{FWDTO\}@([a-z-]+)\)`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("the sample dials forwards nowhere the test can find")
	}
	body, ok := sampleContext(string(raw), m[1])
	if !ok || m[1] == "internal" {
		t.Fatalf("forwards are dialled in [%s], which is not a context of their own", m[1])
	}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "include") || regexp.MustCompile(`^exten\s*=>\s*_?[*#]`).MatchString(line) {
			t.Errorf("[%s], where forwards are dialled, reaches feature codes: %s", m[1], line)
		}
	}
}

// sampleContext returns the lines of one context of a dialplan.
func sampleContext(conf, name string) (string, bool) {
	_, rest, ok := strings.Cut(conf, "\n["+name+"]\n")
	if !ok {
		return "", false
	}
	if i := strings.Index(rest, "\n["); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}
