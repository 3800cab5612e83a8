package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/internal/testpki"
)

// logBuffer is a zerolog writer tests read while the server writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(strings.ToLower(l.b.String()), strings.ToLower(sub))
}

// A secure node: its client port and its routes take only the cluster's
// secret, over TLS checked against the cluster's CA. Clients and rogue
// servers without the secret, with a wrong one, or with a certificate of
// another CA are refused; the right ones are taken.
func TestSecureNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, otherCA := testpki.NewCA(t, "cluster"), testpki.NewCA(t, "rogue")
	secret := testSecret(t)
	secure := func(name string, ca *testpki.CA, secret string) Security {
		s := Security{Secret: secret, CAFile: ca.CertFile}
		s.CertFile, s.KeyFile = ca.Issue(t, name)
		return s
	}
	var alog logBuffer
	// a routes to b, which starts last (a clustered JetStream needs a
	// peer to start).
	bRoute := testenv.FreeAddr(t)
	a, err := StartNode(ctx, NodeConfig{Name: "a", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Peers: []string{bRoute}, DataDir: t.TempDir(),
		Security: secure("a", ca, secret), Log: zerolog.New(&alog).Level(zerolog.DebugLevel)})
	if err != nil {
		t.Fatal(err, alog.b.String())
	}
	defer a.Close()
	url := a.ClientURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("the client port is not TLS: %s", url)
	}

	// Clients.
	for _, c := range []struct {
		what string
		opts []nats.Option
		ok   bool
	}{
		{"no credentials, no CA", nil, false},
		{"the CA, no credentials", []nats.Option{nats.RootCAs(ca.CertFile)}, false},
		{"the CA, a wrong secret", []nats.Option{nats.RootCAs(ca.CertFile), nats.UserInfo(clientUser, testSecret(t))}, false},
		{"the CA, the routes' user", []nats.Option{nats.RootCAs(ca.CertFile), nats.UserInfo(routeUser, secret)}, false},
		{"another CA, the secret", []nats.Option{nats.RootCAs(otherCA.CertFile), nats.UserInfo(clientUser, secret)}, false},
		{"the CA and the secret", []nats.Option{nats.RootCAs(ca.CertFile), nats.UserInfo(clientUser, secret)}, true},
	} {
		nc, err := nats.Connect(url, append(c.opts, nats.Timeout(5*time.Second), nats.NoReconnect())...)
		if (err == nil) != c.ok {
			t.Errorf("client with %s: %v", c.what, err)
		}
		if err == nil {
			if _, err := nc.RTT(); err != nil {
				t.Errorf("client with %s cannot talk: %v", c.what, err)
			}
			nc.Close()
		}
	}
	// Security.ClientOptions: what presenced uses with PRESENCED_NATS_URL.
	opts, err := Security{Secret: secret, CAFile: ca.CertFile}.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := Connect(ctx, url, opts...); err != nil {
		t.Fatalf("Connect with the secret and the CA: %v", err)
	} else {
		c.Close()
	}

	// Rogue servers, each routing to a: none is taken.
	for i, r := range []struct {
		what string
		sec  Security
		says string // what a's log says of it
	}{
		{"no TLS, no secret", Security{}, "Router connection closed: TLS Handshake Failure"},
		{"the secret, no TLS", Security{Secret: secret}, "Router connection closed: TLS Handshake Failure"},
		{"TLS of another CA, the secret", secure("rogue-ca", otherCA, secret), "Router connection closed: TLS Handshake Failure"},
		{"TLS of the cluster's CA, a wrong secret", secure("rogue-secret", ca, testSecret(t)), "Router connection closed: Authentication Failure"},
		{"TLS of the cluster's CA, no secret", secure("rogue-nosecret", ca, ""), "Router connection closed: Authentication Failure"},
	} {
		before := alog.count(r.says)
		rogue, err := StartNode(ctx, NodeConfig{Name: fmt.Sprintf("rogue%d", i), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
			Peers: []string{a.RouteAddr()}, DataDir: t.TempDir(), Security: r.sec})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "a refuses the rogue server with "+r.what, func() bool { return alog.count(r.says) > before })
		if a.NumRoutes() != 0 {
			t.Errorf("a rogue server with %s was routed to (%d routes at a)", r.what, a.NumRoutes())
		}
		// The rogue's side counts its route until it hears it was closed
		// (a moment after a's log says so: red once in a full run).
		testenv.Eventually(t, "the rogue server with "+r.what+" without a route", func() bool { return rogue.NumRoutes() == 0 },
			func() string { return fmt.Sprint(rogue.NumRoutes(), " routes at the rogue, ", a.NumRoutes(), " at a") })
		_ = rogue.Close()
	}

	// The cluster's own peer: routed both ways.
	b, err := StartNode(ctx, NodeConfig{Name: "b", Listen: "127.0.0.1:0", ClusterListen: bRoute,
		Peers: []string{a.RouteAddr()}, DataDir: t.TempDir(), Security: secure("b", ca, secret)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testenv.Eventually(t, "a and b route to each other", func() bool { return a.NumRoutes() > 0 && b.NumRoutes() > 0 })
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "127.5.0.1": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.2": false, "pbx.example.com": false} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v", host, got)
		}
	}
}

// A record planted in the bucket by anything that reached NATS (here one
// whose message is not UTF-8, and one with an unknown state) is not
// taken: the watch skips it, a load finds none at its revision, and the
// next save replaces it.
func TestPlantedRecords(t *testing.T) {
	_, conns := startCluster(t, 1)
	rs := openRecords(t, conns, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := []presence.Record{
		{Current: presence.Value{State: presence.Away, Message: "\xff\xfe"}},
		{Current: presence.Value{State: presence.State(200)}},
	}
	for i, rec := range bad {
		user := fmt.Sprintf("100%d", i)
		if _, err := rs[0].kv.Put(ctx, key(user), presence.EncodeRecord(rec)); err != nil {
			t.Fatal(err)
		}
		got, rev, ok, err := rs[0].Load(ctx, user)
		if err != nil || ok || rev == 0 {
			t.Fatalf("load of a planted record: %+v rev %d ok %v %v", got, rev, ok, err)
		}
		good := presence.Record{Current: presence.Value{State: presence.DND}}
		if _, err := rs[0].Swap(ctx, user, good, rev); err != nil {
			t.Fatalf("a save over a planted record: %v", err)
		}
	}
	var mu sync.Mutex
	seen := map[string]presence.Record{}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go func() {
		_ = rs[0].Watch(wctx, func(user string, rec presence.Record, _ uint64) {
			mu.Lock()
			seen[user] = rec
			mu.Unlock()
		})
	}()
	if _, err := rs[0].kv.Put(ctx, key("1009"), presence.EncodeRecord(bad[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := rs[0].kv.Put(ctx, key("1010"), presence.EncodeRecord(presence.Record{Current: presence.Value{State: presence.Away}})); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the watch sees a valid record written after a planted one", func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := seen["1010"]
		return ok
	})
	mu.Lock()
	defer mu.Unlock()
	if _, ok := seen["1009"]; ok {
		t.Fatal("the watch took a planted record")
	}
	if seen["1000"].Current.State != presence.DND {
		t.Fatalf("the replaced record: %+v", seen["1000"])
	}
}

// An existing NATS that wants an nkey: Security.ClientOptions logs in
// with the seed in PRESENCED_NATS_NKEY; another seed is refused.
func TestNkeyLogin(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.nk"), filepath.Join(dir, "bad.nk")
	if err := os.WriteFile(good, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for seedFile, ok := range map[string]bool{good: true, bad: false} {
		opts, err := Security{NkeyFile: seedFile}.ClientOptions()
		if err != nil {
			t.Fatal(err)
		}
		c, err := Connect(ctx, srv.ClientURL(), append(opts, nats.NoReconnect())...)
		if (err == nil) != ok {
			t.Errorf("nkey %s: %v", filepath.Base(seedFile), err)
		}
		if err == nil {
			c.Close()
		}
	}
	if _, err := (Security{NkeyFile: filepath.Join(dir, "none")}).ClientOptions(); err == nil {
		t.Error("a missing seed file was taken")
	}
}
