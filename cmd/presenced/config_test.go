package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/testpki"
)

func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AGIListen != "127.0.0.1:4573" || c.DataDir != "./data" || c.LogFormat != "json" || c.LogLevel != "info" ||
		c.AGIMaxSessions != 1024 || c.AGIEnvTimeout != 5*time.Second || c.AGICommandTimeout != 10*time.Second ||
		c.PresenceHistory != 20 || c.ShutdownTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	if len(c.allow) != 2 || !c.allow[0].Addr().IsLoopback() {
		t.Fatalf("allow %v", c.allow)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, kv := range []string{
		"PRESENCED_AGI_ALLOW=10.0.0.300/8", "PRESENCED_AGI_ALLOW=,", "PRESENCED_AGI_ALLOW=example.com",
		"PRESENCED_AGI_MAX_SESSIONS=0", "PRESENCED_AGI_MAX_SESSIONS=many", "PRESENCED_AGI_ENV_TIMEOUT=-1s",
		"PRESENCED_AGI_COMMAND_TIMEOUT=soon", "PRESENCED_LOG_LEVEL=loud", "PRESENCED_LOG_FORMAT=xml",
		"PRESENCED_PRESENCE_HISTORY=0", "PRESENCED_WEBHOOK_TIMEOUT=0s", "PRESENCED_WEBHOOK_RETRY_MAX=500ms",
		"PRESENCED_WEBHOOK_BACKLOG=10", "PRESENCED_WEBHOOK_BACKLOG=-1",
		"PRESENCED_SITE=paris", // not in a cluster
		"PRESENCED_REMOTE_CONTEXT=a@b", "PRESENCED_REMOTE_CONTEXT=a b",
		"PRESENCED_DIAL_CONTEXT=a@b", "PRESENCED_DIAL_CONTEXT=${SHELL(id)}",
		"PRESENCED_DPMA=maybe", "PRESENCED_DPMA=on", // on needs AMI
		"PRESENCED_XUC_USERS=/nonexistent/xuc", "PRESENCED_APPWS_APPS=/nonexistent/apps", "PRESENCED_PHONES=/nonexistent/phones",
	} {
		_, err := LoadConfig([]string{kv})
		name, _, _ := strings.Cut(kv, "=")
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(name, "PRESENCED_")) {
			t.Errorf("%s: err %v", kv, err)
		}
	}
}

func TestConfigSite(t *testing.T) {
	cluster := "PRESENCED_NATS_URL=nats://127.0.0.1:4222"
	if c, err := LoadConfig([]string{cluster, "PRESENCED_SITE=lyon_2"}); err != nil || c.Site != "lyon_2" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"Paris", "pa-ris", "pa/ris", strings.Repeat("a", 33)} {
		_, err := LoadConfig([]string{cluster, "PRESENCED_SITE=" + bad})
		if err == nil || !strings.Contains(err.Error(), "SITE") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestParseAllow(t *testing.T) {
	p, err := ParseAllow(" 192.0.2.7 , 10.1.2.3/8,::1")
	if err != nil || len(p) != 3 || p[0].Bits() != 32 || p[1].String() != "10.0.0.0/8" || p[2].Bits() != 128 {
		t.Fatalf("%v, %v", p, err)
	}
}

// docs/configuration.md lists every variable once, with its default, and
// nothing presenced does not read; the systemd unit's settings are the
// ones it names. (The example environment file is held to the defaults by
// TestEnvExampleHasEveryDefault.)
func TestDocsListEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{} // variable -> the table rows naming it first
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `"+envPrefix) {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, name := range strings.Split(first, ",") {
			name = strings.Trim(strings.TrimSpace(name), "`")
			rows[name] = append(rows[name], line)
		}
	}
	known := map[string]bool{}
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		f := ct.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		known[envPrefix+name] = true
		rs := rows[envPrefix+name]
		if len(rs) != 1 {
			t.Errorf("%s%s is in the table %d times, want once", envPrefix, name, len(rs))
			continue
		}
		if def, ok := f.Tag.Lookup("envDefault"); ok && !strings.Contains(rs[0], "`"+def+"`") {
			t.Errorf("%s%s: the table does not give its default %q", envPrefix, name, def)
		}
	}
	for name := range rows {
		if !known[name] {
			t.Errorf("the table lists %s, which presenced does not read", name)
		}
	}
	unit, err := os.ReadFile("../../deploy/presenced.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		kv, ok := strings.CutPrefix(line, "Environment=")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(kv, "=")
		if !known[name] || !strings.Contains(string(doc), kv) {
			t.Errorf("the unit sets %s, which the configuration page does not name", kv)
		}
	}
}

// A cluster that anything beyond loopback can reach needs the shared
// secret and TLS; presenced refuses to start without them, naming the
// setting.
func TestConfigClusterSecurity(t *testing.T) {
	ca := testpki.NewCA(t, "cluster")
	cert, key := ca.Issue(t, "n1")
	dir := t.TempDir()
	secret, short := filepath.Join(dir, "secret"), filepath.Join(dir, "short")
	if err := os.WriteFile(secret, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsEnv := []string{"PRESENCED_CLUSTER_TLS_CERT=" + cert, "PRESENCED_CLUSTER_TLS_KEY=" + key, "PRESENCED_CLUSTER_TLS_CA=" + ca.CertFile}
	embedded := func(listen string, more ...string) []string {
		return append([]string{"PRESENCED_CLUSTER_LISTEN=" + listen, "PRESENCED_CLUSTER_PEERS=127.0.0.2:6222"}, more...)
	}
	for _, tc := range []struct {
		what string
		env  []string
		bad  string // the setting named; "" = accepted
	}{
		{"loopback, open", embedded("127.0.0.1:6222"), ""},
		{"every address, open", embedded("0.0.0.0:6222"), "CLUSTER_SECRET_FILE"},
		{"a LAN address, open", embedded("10.0.0.2:6222"), "CLUSTER_SECRET_FILE"},
		{"routes on loopback, the client port beyond", embedded("127.0.0.1:6222", "PRESENCED_NATS_LISTEN=0.0.0.0:4222"), "CLUSTER_SECRET_FILE"},
		{"every address, a secret, no TLS", embedded("0.0.0.0:6222", "PRESENCED_CLUSTER_SECRET_FILE="+secret), "CLUSTER_TLS_CERT"},
		{"every address, a secret and TLS", embedded("0.0.0.0:6222", append(tlsEnv, "PRESENCED_CLUSTER_SECRET_FILE="+secret)...), ""},
		{"a short secret", embedded("127.0.0.1:6222", "PRESENCED_CLUSTER_SECRET_FILE="+short), "CLUSTER_SECRET_FILE"},
		{"a secret file that is not there", embedded("127.0.0.1:6222", "PRESENCED_CLUSTER_SECRET_FILE="+filepath.Join(dir, "none")), "CLUSTER_SECRET_FILE"},
		{"a certificate without its CA", embedded("127.0.0.1:6222", tlsEnv[0], tlsEnv[1]), "CLUSTER_TLS_CERT"},
		{"a certificate without its key", embedded("127.0.0.1:6222", tlsEnv[0], tlsEnv[2]), "CLUSTER_TLS_KEY"},
		{"a key that is not the certificate's", embedded("127.0.0.1:6222", tlsEnv[0], "PRESENCED_CLUSTER_TLS_KEY="+ca.CertFile, tlsEnv[2]), "CLUSTER_TLS_CERT"},
		{"creds for an embedded server", embedded("127.0.0.1:6222", "PRESENCED_NATS_CREDS="+secret), "NATS_CREDS"},
		{"a secret without a cluster", []string{"PRESENCED_CLUSTER_SECRET_FILE=" + secret}, "CLUSTER_SECRET_FILE"},
		{"NATS on loopback, open", []string{"PRESENCED_NATS_URL=nats://127.0.0.1:4222"}, ""},
		{"NATS beyond loopback, open", []string{"PRESENCED_NATS_URL=nats://10.0.0.5:4222"}, "NATS_CREDS"},
		{"NATS beyond loopback, a password, no TLS", []string{"PRESENCED_NATS_URL=nats://presenced:pw@10.0.0.5:4222"}, "CLUSTER_TLS_CA"},
		{"NATS beyond loopback, a password over tls://", []string{"PRESENCED_NATS_URL=tls://presenced:pw@10.0.0.5:4222"}, ""},
		{"NATS beyond loopback, the secret and the CA", []string{"PRESENCED_NATS_URL=nats://10.0.0.5:4222", "PRESENCED_CLUSTER_SECRET_FILE=" + secret, tlsEnv[2]}, ""},
		{"NATS beyond loopback, a creds file and the CA", []string{"PRESENCED_NATS_URL=nats://10.0.0.5:4222", "PRESENCED_NATS_CREDS=" + secret, tlsEnv[2]}, ""},
		{"creds and an nkey", []string{"PRESENCED_NATS_URL=nats://127.0.0.1:4222", "PRESENCED_NATS_CREDS=" + secret, "PRESENCED_NATS_NKEY=" + secret}, "NATS_NKEY"},
	} {
		_, err := LoadConfig(tc.env)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.what, err)
		case tc.bad != "" && (err == nil || !strings.HasPrefix(err.Error(), "PRESENCED_"+tc.bad+":")):
			t.Errorf("%s: %v, want PRESENCED_%s named", tc.what, err, tc.bad)
		}
	}
}
