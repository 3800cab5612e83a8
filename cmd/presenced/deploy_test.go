package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The systemd unit verifies (where systemd-analyze is installed; CI
// requires it): every key known, the binary where ExecStart says (here:
// the one just built).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	unit, err := os.ReadFile("../../deploy/presenced.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ProtectSystem=strict", "StateDirectory=presenced", "DynamicUser=yes", "NoNewPrivileges=yes",
		"ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=2", "Environment=PRESENCED_DATA_DIR=/var/lib/presenced"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	bin := buildBinary(t)
	path := filepath.Join(t.TempDir(), "presenced.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/presenced", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	// systemd-analyze exits 0 on unknown keys and bad values, and says so.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The example environment file names every setting with its default:
// uncommented, it configures exactly what no setting does.
func TestEnvExampleHasEveryDefault(t *testing.T) {
	f, err := os.Open("../../deploy/presenced.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# PRESENCED_")
		if !ok {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		seen[name] = true
		if value != "" {
			env = append(env, "PRESENCED_"+line)
		}
	}
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		if name := ct.Field(i).Tag.Get("env"); name != "" && !seen[name] {
			t.Errorf("PRESENCED_%s is not in the example", name)
		}
	}
	got, err := LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := LoadConfig(nil)
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range ct.NumField() {
		if ct.Field(i).IsExported() && !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s: example %v, default %v", ct.Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
}
