package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A PRESENCED_ variable presenced does not read is reported with the
// setting it most likely meant.
func TestUnknownVars(t *testing.T) {
	for _, c := range []struct {
		env  string
		want string // the suggestion; "-": not reported
	}{
		{"PRESENCED_AMI_USR=x", "PRESENCED_AMI_USER"},
		{"PRESENCED_ARI_PASWORD=x", "PRESENCED_ARI_PASSWORD"},
		{"PRESENCED_api_tokens=x", "PRESENCED_API_TOKENS"},
		{"PRESENCED_HTTP_LISTEN=x", "-"},
		{"PRESENCED_BROWSER_TESTS=require", "-"},
		{"OTHER_AMI_USR=x", "-"},
		{"PRESENCED_SOMETHING_ELSE_ENTIRELY=x", ""},
	} {
		got := unknownVars([]string{c.env})
		if c.want == "-" {
			if len(got) != 0 {
				t.Errorf("%s: reported %v", c.env, got)
			}
			continue
		}
		if len(got) != 1 || got[0][1] != c.want {
			t.Errorf("%s: %v, want the suggestion %q", c.env, got, c.want)
		}
	}
}

// presenced config check reads what serve would read, files included,
// and starts nothing.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	phones := filepath.Join(dir, "phones")
	if err := os.WriteFile(phones, []byte("00:04:13:aa:bb:cc,1001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs strings.Builder
	env := []string{"PRESENCED_PHONES=" + phones, "PRESENCED_DATA_DIR=" + dir, "PRESENCED_AMI_USR=x"}
	if code := run([]string{"config", "check"}, env, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"did you mean PRESENCED_AMI_USER?", "ok: PRESENCED_PHONES " + phones + ": 1 phones", "ok: the configuration is valid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "presenced.db")); err == nil {
		t.Error("config check opened the store")
	}
	// A bad file, a bad value: exit 2, naming the setting.
	if err := os.WriteFile(phones, []byte("not a mac,1001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range [][]string{{"PRESENCED_PHONES=" + phones}, {"PRESENCED_AGI_MAX_SESSIONS=many"}} {
		out.Reset()
		errs.Reset()
		if code := run([]string{"config", "check"}, env, &out, &errs); code != 2 || !strings.Contains(errs.String(), strings.SplitN(env[0], "=", 2)[0]) {
			t.Errorf("%v: exit %d, %q", env, code, errs.String())
		}
	}
}

// Started with no Asterisk settings (make run on a fresh clone), presenced
// says what to set next, on the board (whoami's setup, which the board
// shows) and in the log.
func TestFirstRunSaysWhatToSetNext(t *testing.T) {
	bin := buildBinary(t)
	p := startBinary(t, bin, t.TempDir())
	defer p.stop(t)
	code, body := p.do(t, "GET", "/v1/whoami", "", "")
	if code != 200 || !strings.Contains(body, `"setup":["AMI is not configured`) || !strings.Contains(body, "make demo") {
		t.Fatalf("whoami: %d %s", code, body)
	}
	if log := p.logText(); !strings.Contains(log, "ARI is not configured: set PRESENCED_ARI_USER") {
		t.Fatalf("the log does not say what to set:\n%s", log)
	}
	if _, page := p.do(t, "GET", "/", "", ""); !strings.Contains(page, `id="setup"`) {
		t.Fatal("the board has no place to say what to set next")
	}
}
