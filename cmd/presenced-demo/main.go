// Command presenced-demo runs presenced against the project's emulated
// Asterisk (the fake AMI and ARI the tests use, behind one emulated
// Asterisk), with a dozen made-up users whose phones ring and whose calls
// come and go, so that the board, the API and the streams can be tried
// without a PBX. presenced runs with PRESENCED_DEMO=true: the board, the
// log and every answer say DEMO. `make demo` runs it.
//
//	presenced-demo [-presenced bin/presenced] [-http 127.0.0.1:4574] [-agi 127.0.0.1:4573] [-data DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/asterisk/ari/aritest"
)

// The made-up users: extension and name.
var users = [][2]string{
	{"1001", "Alice Martin"}, {"1002", "Bruno Costa"}, {"1003", "Chloé Dubois"}, {"1004", "Dmitri Ivanov"},
	{"1005", "Emma Schulz"}, {"1006", "Farid Haddad"}, {"1007", "Grace Okafor"}, {"1008", "Hiro Tanaka"},
	{"1009", "Inès Moreau"}, {"1010", "Jonas Berg"}, {"1011", "Kavya Rao"}, {"1012", "Liam O'Brien"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "presenced-demo:", err)
		os.Exit(1)
	}
}

// run runs the demo until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("presenced-demo", flag.ContinueOnError)
	bin := fs.String("presenced", "bin/presenced", "the presenced binary")
	httpAddr := fs.String("http", "127.0.0.1:4574", "presenced's HTTP address (the board)")
	agiAddr := fs.String("agi", "127.0.0.1:4573", "presenced's FastAGI address")
	data := fs.String("data", "", "presenced's data directory (default: a temporary one, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range []string{*httpAddr, *agiAddr} {
		if !loopback(a) {
			return fmt.Errorf("%s: the demo listens on loopback only", a)
		}
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "presenced-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	pbx, err := newPBX()
	if err != nil {
		return err
	}
	defer pbx.close()
	roster := filepath.Join(dir, "roster.csv")
	if err := writeRoster(roster); err != nil {
		return err
	}
	cmd := exec.Command(*bin, "serve")
	cmd.Env = append(os.Environ(), "PRESENCED_DEMO=true", "PRESENCED_HTTP_LISTEN="+*httpAddr, "PRESENCED_AGI_LISTEN="+*agiAddr,
		"PRESENCED_DATA_DIR="+filepath.Join(dir, "data"), "PRESENCED_ROSTER="+roster, "PRESENCED_LOG_FORMAT=console", "PRESENCED_LOG_LEVEL=warn",
		"PRESENCED_AMI_ADDR="+pbx.ami.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=demo-ami",
		"PRESENCED_ARI_URL="+pbx.ari.URL(), "PRESENCED_ARI_USER=presenced", "PRESENCED_ARI_PASSWORD=demo-ari")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (make build first): %w", *bin, err)
	}
	// exited is closed when presenced has stopped, with its error in waitErr.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	if err := waitReady(ctx, "http://"+*httpAddr+"/readyz", exited); err != nil {
		if isClosed(exited) {
			return fmt.Errorf("presenced stopped at start: %v", waitErr)
		}
		return err
	}
	fmt.Fprintf(stdout, `presenced DEMO: an emulated Asterisk with %d made-up users, their phones ringing and their calls coming and going.

  the board      http://%s/
  the API        curl http://%s/v1/hints
  a stream       curl -N 'http://%s/v1/events?all=1'
  a hook         the FastAGI server is on %s (agi://%s/presence/set,1001,away)

Set presence from the board, or: curl -X PUT -H 'Content-Type: application/json' -d '{"state":"away","message":"Lunch","for":"30m"}' http://%s/v1/presence/1003
Ctrl-C stops the demo.
`, len(users), *httpAddr, *httpAddr, *httpAddr, *agiAddr, *agiAddr, *httpAddr)
	pbx.drive(ctx, exited)
	if isClosed(exited) && ctx.Err() == nil {
		return fmt.Errorf("presenced stopped: %v", waitErr)
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// loopback reports whether addr's host is a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// pbx is the emulated Asterisk: a fake AMI and a fake ARI behind one
// emulated Asterisk, with the users' hints, phones and mailboxes.
type pbx struct {
	ami *amitest.Server
	ari *aritest.Server
	rng *rand.Rand
	// calls: by extension, the call on the phone now (nil: idle).
	calls map[string]*call
	seq   int
}

type call struct {
	// id is the phone's channel's; linked the call's (the trunk's leg,
	// which started it: so Asterisk tells an incoming leg).
	channel, id, linked, number, name string
	answered                          bool
	next                              time.Time // when it moves on
}

func newPBX() (*pbx, error) {
	ariSrv, err := aritest.New("presenced", "demo-ari")
	if err != nil {
		return nil, err
	}
	amiSrv, err := amitest.New("presenced", "demo-ami")
	if err != nil {
		ariSrv.Close()
		return nil, err
	}
	amiSrv.Attach(ariSrv.Ast)
	p := &pbx{ami: amiSrv, ari: ariSrv, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)), calls: map[string]*call{}}
	hs := make([]amitest.Hint, 0, len(users))
	for i, u := range users {
		hs = append(hs, amitest.Hint{Exten: u[0], Context: "internal",
			App: "PJSIP/" + u[0] + "&Stasis:presenced-dnd-" + u[0] + ",CustomPresence:" + u[0], StatusText: "Idle"})
		ariSrv.SetDevice("PJSIP/"+u[0], "NOT_INUSE")
		amiSrv.SetMailboxQuietly(u[0]+"@default", i%4, i%3)
	}
	amiSrv.SetHints(hs...)
	// A few users start with a presence of their own.
	amiSrv.SetPresenceQuietly("CustomPresence:1002", amitest.Presence{State: "away", Message: "Client visit, back at 3"})
	amiSrv.SetPresenceQuietly("CustomPresence:1005", amitest.Presence{State: "dnd", Message: "Quarter closing"})
	amiSrv.SetPresenceQuietly("CustomPresence:1008", amitest.Presence{State: "available"})
	amiSrv.SetPresenceQuietly("CustomPresence:1011", amitest.Presence{State: "xa", Message: "On holiday"})
	return p, nil
}

func (p *pbx) close() {
	p.ami.Close()
	p.ari.Close()
}

// writeRoster writes the users' names for the board (PRESENCED_ROSTER).
func writeRoster(path string) error {
	var b strings.Builder
	b.WriteString("extension,devices,name\n")
	for _, u := range users {
		fmt.Fprintf(&b, "%s,PJSIP/%s,%s\n", u[0], u[0], u[1])
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// waitReady waits until presenced answers /readyz with 200 (logged in to
// both fakes).
func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(60 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("presenced stopped at start")
		case <-deadline:
			return errors.New("presenced did not get ready within a minute")
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// drive makes the phones ring and the calls come and go, now and then a
// presence change on a phone and a voicemail, until ctx ends or
// presenced stops.
func (p *pbx) drive(ctx context.Context, exited <-chan struct{}) {
	t := time.NewTicker(700 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-exited:
			return
		case now := <-t.C:
			p.step(now)
		}
	}
}

// step moves the calls on, and sometimes starts one or changes a presence.
func (p *pbx) step(now time.Time) {
	for ext, c := range p.calls {
		if now.Before(c.next) {
			continue
		}
		if !c.answered && p.rng.IntN(5) > 0 {
			c.answered, c.next = true, now.Add(time.Duration(5+p.rng.IntN(25))*time.Second)
			p.ami.Call(p.frame("Newstate", ext, c, 6, "Up", ""))
			p.ari.SetDevice("PJSIP/"+ext, "INUSE")
			continue
		}
		// Hung up (or never answered: a missed call, and a voicemail).
		p.ami.Call(p.frame("Hangup", ext, c, 6, "Up", "Cause: 16\r\nCause-txt: Normal Clearing\r\n"))
		p.ari.SetDevice("PJSIP/"+ext, "NOT_INUSE")
		if !c.answered {
			p.ami.SetMailbox(ext+"@default", 1+p.rng.IntN(3), p.rng.IntN(4))
		}
		delete(p.calls, ext)
	}
	switch r := p.rng.IntN(10); {
	case r < 3 && len(p.calls) < len(users)/2:
		u := users[p.rng.IntN(len(users))]
		if _, busy := p.calls[u[0]]; busy {
			return
		}
		p.seq++
		c := &call{channel: fmt.Sprintf("PJSIP/%s-%08x", u[0], p.seq), id: fmt.Sprintf("1796000000.%d", p.seq), linked: fmt.Sprintf("1795999999.%d", p.seq),
			number: fmt.Sprintf("04%08d", p.rng.IntN(100000000)), name: callers[p.rng.IntN(len(callers))], next: now.Add(time.Duration(2+p.rng.IntN(5)) * time.Second)}
		p.calls[u[0]] = c
		p.ami.Call(p.frame("Newchannel", u[0], c, 5, "Ringing", ""))
		p.ari.SetDevice("PJSIP/"+u[0], "RINGING")
	case r == 3 && p.rng.IntN(3) == 0:
		u := users[p.rng.IntN(len(users))]
		pr := moods[p.rng.IntN(len(moods))]
		p.ami.SetPresence("CustomPresence:"+u[0], pr)
	}
}

// Callers and the presence phones set, made up.
var (
	callers = []string{"Acme Supplies", "City Council", "Dr. Patel", "Northwind", "Unknown", "Globex", "Mum"}
	moods   = []amitest.Presence{{State: "away", Message: "Lunch"}, {State: "available"}, {State: "dnd", Message: "In a meeting"},
		{State: "chat", Message: "Free to talk"}, {State: "away", Message: "Back in 10 minutes"}, {State: "available"}}
)

// frame is an AMI channel event of a call on ext's phone, as Asterisk
// sends it (BEHAVIOUR.md 4.15).
func (p *pbx) frame(event, ext string, c *call, state int, desc, extra string) string {
	return fmt.Sprintf("Event: %s\r\nPrivilege: call,all\r\nChannel: %s\r\nChannelState: %d\r\nChannelStateDesc: %s\r\nCallerIDNum: %s\r\nCallerIDName: \r\n"+
		"ConnectedLineNum: %s\r\nConnectedLineName: %s\r\nLanguage: en\r\nAccountCode: \r\nContext: internal\r\nExten: %s\r\nPriority: 1\r\n"+
		"Uniqueid: %s\r\nLinkedid: %s\r\n%s\r\n", event, c.channel, state, desc, ext, c.number, c.name, ext, c.id, c.linked, extra)
}
