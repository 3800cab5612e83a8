package webhook

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/storage/store"
)

func TestTargetPolicyCheck(t *testing.T) {
	all := DefaultTargetPolicy()
	none := TargetPolicy{}
	for _, tc := range []struct {
		addr      string
		def, pub  bool // allowed by the default, by "none"
		wantClass string
	}{
		{"93.184.215.14", true, true, ""},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true, true, ""},
		{"127.0.0.1", true, false, "loopback"},
		{"::1", true, false, "loopback"},
		{"::ffff:127.0.0.1", true, false, "loopback"},
		{"10.1.2.3", true, false, "private"},
		{"192.168.1.1", true, false, "private"},
		{"172.16.0.1", true, false, "private"},
		{"100.64.0.1", true, false, "private"},
		{"fd12:3456::1", true, false, "private"},
		{"169.254.169.254", false, false, "link-local"},
		{"::ffff:169.254.169.254", false, false, "link-local"},
		{"64:ff9b::a9fe:a9fe", false, false, "NAT64"},
		{"fe80::1", false, false, "link-local"},
		{"fd00:ec2::254", false, false, "metadata"},
		{"100.100.100.200", false, false, "metadata"},
		{"168.63.129.16", false, false, "metadata"},
		{"0.0.0.0", false, false, "unspecified"},
		{"0.1.2.3", false, false, "unspecified"},
		{"::", false, false, "unspecified"},
		{"224.0.0.1", false, false, "multicast"},
		{"ff02::1", false, false, "multicast"},
		{"255.255.255.255", false, false, "broadcast"},
		// IPv4 inside IPv6, by every scheme a stack may route.
		{"64:ff9b:1::a9fe:a9fe", false, false, "NAT64 address of link-local"},
		{"64:ff9b:1::7f00:1", true, false, "NAT64 address of loopback"},
		{"2002:a9fe:a9fe::1", false, false, "6to4 address of link-local"},
		{"2002:7f00:1::", true, false, "6to4 address of loopback"},
		{"2002:5db8:d70e::1", true, true, ""},
		{"::169.254.169.254", false, false, "IPv4-compatible address of link-local"},
		{"::10.0.0.1", true, false, "IPv4-compatible address of a private network"},
		{"2001:0:4136:e378:8000:63bf:5601:5601", false, false, "Teredo address of link-local"},
		{"192.0.0.192", false, false, "protocol assignment"},
		{"192.0.0.8", false, false, "protocol assignment"},
	} {
		a := netip.MustParseAddr(tc.addr)
		if err := all.Check(a); (err == nil) != tc.def || (err != nil && !strings.Contains(err.Error(), tc.wantClass)) {
			t.Errorf("%s under the default: %v", tc.addr, err)
		}
		if err := none.Check(a); (err == nil) != tc.pub {
			t.Errorf("%s under none: %v", tc.addr, err)
		}
	}
	for in, want := range map[string]TargetPolicy{"loopback,private": all, "none": none, "private": {Private: true}, " Loopback ": {Loopback: true}} {
		if p, err := ParseTargetPolicy(in); err != nil || p != want {
			t.Errorf("ParseTargetPolicy(%q) = %+v, %v", in, p, err)
		}
	}
	if _, err := ParseTargetPolicy("public"); err == nil {
		t.Error("an unknown class accepted")
	}
}

// Refused at creation: addresses of the refused classes, numbers that
// parsers read as addresses, port 0, and names that resolve to a refused
// address.
func TestTargetsRefusedAtCreation(t *testing.T) {
	none := TargetPolicy{}
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "metadata.internal":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		case "crm.example.com":
			return []netip.Addr{netip.MustParseAddr("192.0.2.10")}, nil
		case "mixed.example.com":
			return []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &notFoundErr{}
	}
	e := openEnv(t, t.TempDir(), Config{Targets: &none, Resolve: resolve})
	for _, tc := range []struct {
		url  string
		code presence.Code
	}{
		{"http://169.254.169.254/latest/meta-data", CodeTargetRefused},
		{"http://[fd00:ec2::254]/", CodeTargetRefused},
		{"http://0.0.0.0:8080/", CodeTargetRefused},
		{"http://127.0.0.1:8080/", CodeTargetRefused},
		{"http://[::1]:8080/", CodeTargetRefused},
		{"http://[::ffff:127.0.0.1]/", CodeTargetRefused},
		{"http://2130706433/", CodeTargetRefused},
		{"http://0x7f000001/", CodeTargetRefused},
		{"http://0177.0.0.1/", CodeTargetRefused},
		{"http://127.1/", CodeTargetRefused},
		{"http://10.0.0.5/", CodeTargetRefused},
		{"http://crm.example.com:0/", presence.CodeInvalidArgument},
		{"http://metadata.internal/", CodeTargetRefused},
		{"http://mixed.example.com/", CodeTargetRefused},
		{"http://crm.example.com/hook", ""},
		{"http://unresolvable.example.com/hook", ""},
	} {
		_, _, err := e.m.Create(context.Background(), Spec{URL: tc.url, All: true})
		if presence.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v; want %s", tc.url, err, tc.code)
		}
	}
}

type notFoundErr struct{}

func (*notFoundErr) Error() string { return "no such host" }

// Refused at connect time: a name that passed at creation but resolves
// (now) to a refused address gets nothing, and says why.
func TestTargetRefusedAtConnect(t *testing.T) {
	tg := newTarget(t) // on 127.0.0.1
	none := TargetPolicy{}
	// The creation-time resolver sees a public address; the dialer sees
	// the real one, loopback.
	resolve := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.10")}, nil
	}
	e := openEnv(t, t.TempDir(), Config{Targets: &none, Resolve: resolve})
	url := strings.Replace(tg.srv.URL, "127.0.0.1", "localhost", 1)
	info, _ := mustCreate(t, e.m, Spec{URL: url, All: true})
	res, err := e.m.Test(context.Background(), info.ID)
	if err != nil || res.Delivered || !strings.Contains(res.Error, string(CodeTargetRefused)) || !strings.Contains(res.Error, "loopback") {
		t.Fatalf("test to a refused address: %+v %v", res, err)
	}
	if tg.count() != 0 {
		t.Fatalf("%d requests reached a refused address", tg.count())
	}
	// With loopback allowed, the same webhook reaches it.
	e.close()
	def := DefaultTargetPolicy()
	e = openEnv(t, e.dir, Config{Targets: &def, Resolve: resolve})
	if res, err := e.m.Test(context.Background(), info.ID); err != nil || !res.Delivered {
		t.Fatalf("allowed: %+v %v", res, err)
	}
}

// A URL accepted at creation under "none" has a host that is a name (not
// a number in disguise) or an address Check takes.
func FuzzTargetURL(f *testing.F) {
	for _, u := range []string{"http://169.254.169.254/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:10.0.0.1]:80/",
		"https://crm.example.com/x", "http://127.1:0/", "http://[fe80::1%25eth0]/"} {
		f.Add(u)
	}
	none := TargetPolicy{}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkURL(raw) != nil {
			return
		}
		err := none.checkHost(context.Background(), nil, raw)
		if err != nil {
			if c := presence.ErrorCode(err); c != CodeTargetRefused && c != presence.CodeInvalidArgument {
				t.Fatalf("code %v", err)
			}
			return
		}
		u, _ := url.Parse(raw)
		host := u.Hostname()
		if a, perr := netip.ParseAddr(host); perr == nil {
			if none.Check(a) != nil {
				t.Fatalf("%s accepted", raw)
			}
			return
		}
		labels := strings.Split(strings.TrimSuffix(host, "."), ".")
		if numeric(labels[len(labels)-1]) {
			t.Fatalf("%s: a numeric host accepted", raw)
		}
	})
}

// A test to a closed port and one to a port where something other than
// HTTP listens say the same: /test is not a port scanner.
func TestTestSaysNothingOfPorts(t *testing.T) {
	e := openEnv(t, t.TempDir(), Config{Timeout: 2 * time.Second})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	}()
	var errs []string
	for _, u := range []string{closedURL, "http://" + open.Addr().String() + "/"} {
		info, _ := mustCreate(t, e.m, Spec{URL: u, All: true})
		res, err := e.m.Test(context.Background(), info.ID)
		if err != nil || res.Delivered || res.Status != 0 {
			t.Fatalf("%s: %+v %v", u, res, err)
		}
		errs = append(errs, res.Error)
	}
	if errs[0] != errs[1] || errs[0] == "" {
		t.Fatalf("a closed port says %q, a non-HTTP one %q", errs[0], errs[1])
	}
}

// Definitions presenced's API would refuse, written into the store (or
// the cluster's bucket) by something else, are never delivered.
func TestStoredDefinitionsChecked(t *testing.T) {
	dir := t.TempDir()
	none := TargetPolicy{}
	e := openEnv(t, dir, Config{Targets: &none})
	good, _ := mustCreate(t, e.m, Spec{URL: "https://crm.example.com/hook", All: true})
	e.close()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	planted := map[string]string{
		"wh_00000000000000a1": `{"id":"wh_00000000000000a1","url":"http://169.254.169.254/latest","method":"POST","secret":"0123456789abcdef0123","all":true}`,
		"wh_00000000000000a2": `{"id":"wh_00000000000000a2","url":"http://127.0.0.1:2375/","method":"POST","secret":"0123456789abcdef0123","all":true}`,
		"wh_00000000000000a3": `{"id":"wh_00000000000000a3","url":"https://crm.example.com/","method":"POST","secret":"","all":true}`,
		"wh_00000000000000a4": `{"id":"wh_00000000000000a4","url":"https://crm.example.com/","method":"PUT","secret":"0123456789abcdef0123","all":true}`,
		"wh_00000000000000a5": `{"id":"wh_00000000000000a5","url":"file:///etc/passwd","method":"POST","secret":"0123456789abcdef0123","all":true}`,
		"not-an-id":           `{"id":"not-an-id","url":"https://crm.example.com/","method":"POST","secret":"0123456789abcdef0123","all":true}`,
		"wh_00000000000000a6": `{"id":"wh_00000000000000a6","url":"https://crm.example.com/","method":"POST","secret":"0123456789abcdef0123"}`,
	}
	for id, raw := range planted {
		if err := db.PutWebhook(ctx, id, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	e = openEnv(t, dir, Config{Targets: &none})
	list := e.m.List()
	if len(list) != 1 || list[0].ID != good.ID {
		t.Fatalf("webhooks after planting: %+v", list)
	}
}
