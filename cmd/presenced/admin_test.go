package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// The admin command line against a running presenced with tokens: what an
// admin types, what it prints, its exit status.
func TestAdminCommands(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	const admin, reader = "admin-token-0123456789", "read-token-0123456789"
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n"})
	m := openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"), "PRESENCED_ARI_URL=", "PRESENCED_AMI_ADDR=",
		"PRESENCED_API_TOKENS=admin:ops:"+admin+",read:board:"+reader)
	defer m.Close()
	env := []string{"PRESENCED_URL=http://" + m.http.Addr().String(), "PRESENCED_TOKEN=" + admin}
	cli := func(env []string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(args, env, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	var webhookID string
	for _, tc := range []struct {
		args   []string
		env    []string
		code   int
		stdout string // a part of it
		stderr string
	}{
		{args: []string{"presence", "set", "1001", "away", "--message", "lunch", "--for", "30m"}, code: 0, stdout: `1001: away "lunch" until`},
		{args: []string{"presence", "get", "1001"}, code: 0, stdout: `1001: away "lunch"`},
		{args: []string{"presence", "list"}, code: 0, stdout: "CustomPresence:1001  away"},
		{args: []string{"presence", "get", "1001", "--json"}, code: 0, stdout: `"provider":"CustomPresence:1001"`},
		{args: []string{"presence", "set", "1001", "nap"}, code: 1, stderr: "INVALID_STATE"},
		{args: []string{"presence", "restore", "1001"}, code: 0, stdout: "1001: not_set"},
		{args: []string{"presence", "set", "1001"}, code: 2, stderr: "set takes USER STATE"},
		{args: []string{"presence", "fly"}, code: 2, stderr: "unknown command"},
		{args: []string{"presence", "--help"}, code: 0, stdout: "presenced presence get USER"},
		{args: []string{"hints"}, code: 0, stdout: "1001@internal"},
		{args: []string{"hints", "--context", "other"}, code: 0, stdout: "HINT"},
		{args: []string{"webhooks", "add", target.URL + "/in", "--hints", "1001@internal", "--description", "crm"}, code: 0, stdout: "created wh_"},
		{args: []string{"webhooks", "list"}, code: 0, stdout: target.URL + "/in"},
		{args: []string{"webhooks", "add", "http://169.254.169.254/", "--all"}, code: 1, stderr: "TARGET_REFUSED"},
		{args: []string{"webhooks", "list"}, env: []string{"PRESENCED_URL=http://" + m.http.Addr().String(), "PRESENCED_TOKEN=" + reader}, code: 1, stderr: "FORBIDDEN"},
		{args: []string{"hints"}, env: []string{"PRESENCED_URL=http://" + m.http.Addr().String()}, code: 1, stderr: "UNAUTHORIZED"},
		{args: []string{"hints"}, env: []string{"PRESENCED_URL=ftp://x"}, code: 2, stderr: "PRESENCED_URL"},
		{args: []string{"webhooks", "delete", "{id}"}, code: 0, stdout: "deleted wh_"},
		{args: []string{"webhooks", "delete", "{id}"}, code: 1, stderr: "NOT_FOUND"},
	} {
		e := env
		if tc.env != nil {
			e = tc.env
		}
		args := append([]string{}, tc.args...)
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "{id}", webhookID)
		}
		code, out, errOut := cli(e, args...)
		if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%v: exit %d\nstdout %s\nstderr %s", args, code, out, errOut)
		}
		if id, ok := strings.CutPrefix(out, "created "); ok {
			webhookID, _, _ = strings.Cut(id, "\n")
		}
	}
}
