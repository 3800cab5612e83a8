package ami

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
)

// recorder collects what a feed reports.
type recorder struct {
	mu       sync.Mutex
	presence map[string]hints.ProviderPresence
	hints    []hints.Hint
	changes  chan string
}

func newRecorder() *recorder {
	return &recorder{presence: map[string]hints.ProviderPresence{}, changes: make(chan string, 1000)}
}

func (r *recorder) feed(addr string) *Feed {
	return &Feed{Addr: addr, User: "ami", Secret: "ami", Log: zerolog.Nop(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Presence: r, Hints: r}
}

func (r *recorder) Observe(p string, v presence.Value, invalid bool) {
	r.mu.Lock()
	r.presence[p] = hints.ProviderPresence{Value: v, Invalid: invalid}
	r.mu.Unlock()
	r.changes <- p + "=" + v.State.String()
}

func (r *recorder) ForgetEchoes() {}

func (r *recorder) ReplaceHints(hs []hints.Hint) (int, int) {
	r.mu.Lock()
	r.hints = hs
	r.mu.Unlock()
	r.changes <- "hints"
	return len(hs), 0
}

func (r *recorder) get(p string) hints.ProviderPresence {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.presence[p]
}

// await waits for a report; the feed runs on its own goroutines.
func (r *recorder) await(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-r.changes:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q", want)
		}
	}
}

func start(t *testing.T, f *Feed) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestFeedSyncEventsAndReconnect(t *testing.T) {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", Status: 4, StatusText: "Unavailable"})
	srv.SetPresenceQuietly("CustomPresence:1001", amitest.Presence{State: "away", Subtype: "lunch", Message: "back, soon"})
	r := newRecorder()
	f := r.feed(srv.Addr())
	start(t, f)
	r.await(t, "CustomPresence:1001=away")
	r.await(t, "hints")
	if p := r.get("CustomPresence:1001"); p.Value.Subtype != "lunch" || p.Value.Message != "back, soon" {
		t.Fatalf("presence %+v", p)
	}
	r.mu.Lock()
	if len(r.hints) != 1 || r.hints[0].Key() != "1001@internal" || r.hints[0].App() != "PJSIP/1001,CustomPresence:1001" {
		t.Fatalf("hints %+v", r.hints)
	}
	r.mu.Unlock()

	// A change made elsewhere arrives as an event (escaped by Asterisk),
	// quotes, backslashes, tabs and line breaks and all.
	const sub, msg = "Büro \"日本\" it's\\ok?\t(tab)", "in a \"meeting\"\nroom 2 \\ C:\\dir\\n ${SHELL(id)}, end\r"
	srv.SetPresence("CustomPresence:1001", amitest.Presence{State: "dnd", Subtype: sub, Message: msg})
	r.await(t, "CustomPresence:1001=dnd")
	if p := r.get("CustomPresence:1001"); p.Value.Message != msg || p.Value.Subtype != sub {
		t.Fatalf("subtype %q message %q", p.Value.Subtype, p.Value.Message)
	}

	// Dropped; a change while away; after the reconnect the resync has it.
	srv.Drop()
	srv.SetPresenceQuietly("CustomPresence:1001", amitest.Presence{State: "chat"})
	r.await(t, "CustomPresence:1001=chat")
	r.await(t, "hints")
	testenv.Eventually(t, "connected after resync", func() bool { ok, _ := f.Status(); return ok })

	// A later FullyBooted (Asterisk finished booting) resyncs; the one that
	// greets each login does not.
	n := f.Resyncs()
	srv.SetPresenceQuietly("CustomPresence:1002", amitest.Presence{State: "xa"})
	srv.FullyBooted()
	r.await(t, "CustomPresence:1002=xa")
	r.await(t, "hints")
	time.Sleep(50 * time.Millisecond) // a second, wrong resync would show by now
	if f.Resyncs() != n+1 {
		t.Fatalf("%d resyncs after FullyBooted, want %d", f.Resyncs(), n+1)
	}
}

func TestFeedRetriesUntilAsteriskAppears(t *testing.T) {
	srv, err := amitest.New("ami", "other")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := newRecorder()
	f := r.feed(srv.Addr())
	start(t, f)
	testenv.Eventually(t, "the login refused", func() bool {
		ok, err := f.Status()
		return !ok && err != nil && strings.Contains(err.Error(), "refused the login")
	}, func() string { ok, err := f.Status(); return fmt.Sprintf("status %v %v", ok, err) })
	srv.SetSecret("ami") // the admin fixes manager.conf
	r.await(t, "hints")
}

func TestFeedEventsNotLostWhenConsumerIsSlow(t *testing.T) {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := newRecorder()
	f := r.feed(srv.Addr())
	f.Presence = slowSink{r}
	start(t, f)
	r.await(t, "hints")
	for i := range 20 {
		srv.SetPresence("CustomPresence:"+string(rune('a'+i)), amitest.Presence{State: "away"})
	}
	for i := range 20 {
		r.await(t, "CustomPresence:"+string(rune('a'+i))+"=away")
	}
}

func TestParseFrame(t *testing.T) {
	m, err := parseFrame("Response: Success\r\nActionID: p1\r\nMessage: Presence State\r\nState: away\r\nSubtype: lunch\r\nMessage: back soon\r\nPresenceMessage: back soon\r\n\r\n")
	if err != nil || m.Field("PresenceMessage") != "back soon" || len(m.FieldValues("Message")) != 2 {
		t.Fatalf("%v %v", m, err)
	}
	m, err = parseFrame("Event: PresenceStateChange\r\nMessage: two\nlines\r\n\r\n")
	if err != nil || m.Field("Message") != "two\nlines" {
		t.Fatalf("bare line feed: %v %v", m, err)
	}
	for _, bad := range []string{"Event: x\r", "", "\r\n", "no colon\r\n\r\n"} {
		if _, err := parseFrame(bad); err == nil && bad != "no colon\r\n\r\n" {
			t.Errorf("parseFrame(%q) accepted", bad)
		}
	}
}

func TestReadFrame(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("\r\nEvent: a\r\nMessage: x\n\r\n\r\nEvent: b\r\n\r\n"))
	f1, err := readFrame(br)
	if err != nil || f1 != "Event: a\r\nMessage: x\n\r\n\r\n" {
		t.Fatalf("%q %v", f1, err)
	}
	f2, err := readFrame(br)
	if err != nil || f2 != "Event: b\r\n\r\n" {
		t.Fatalf("%q %v", f2, err)
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add("Event: PresenceStateChange\r\nPresentity: CustomPresence:1001\r\nStatus: away\r\n\r\n")
	f.Add("Event: x\r")
	f.Add("Message: a\nb\r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseFrame(s)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		br := bufio.NewReader(strings.NewReader(s))
		for {
			if _, err := readFrame(br); err != nil {
				break
			}
		}
	})
}

// slowSink takes far longer per event than goami2's 10 ms give-up.
type slowSink struct{ r *recorder }

func (s slowSink) Observe(p string, v presence.Value, invalid bool) {
	time.Sleep(20 * time.Millisecond)
	s.r.Observe(p, v, invalid)
}

func (s slowSink) ForgetEchoes() {}

// Hints added, changed and removed by a `dialplan reload` are followed
// within a second, from the burst Asterisk sends (BEHAVIOUR.md 4.13); a
// device change's ExtensionStatus reads nothing again.
func TestFeedFollowsDialplanReload(t *testing.T) {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := []amitest.Hint{
		{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", Status: 4, StatusText: "Unavailable"},
		{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", Status: 4, StatusText: "Unavailable"},
		{Exten: "1953", Context: "internal", App: "Custom:rec1953,CustomPresence:1003", Status: 1, StatusText: "InUse"},
	}
	srv.SetHints(base...)
	tb := hints.NewTable()
	f := &Feed{Addr: srv.Addr(), User: "ami", Secret: "ami", Log: zerolog.Nop(), Presence: newRecorder(), Hints: tb}
	start(t, f)
	follows := func(what string, want map[string]string) {
		t.Helper()
		held := func() map[string]string {
			got := map[string]string{}
			for _, st := range tb.Snapshot() {
				got[st.Key()] = st.App()
			}
			return got
		}
		testenv.Eventually(t, what+": the table follows", func() bool { return maps.Equal(held(), want) },
			func() string { return fmt.Sprintf("the table holds %v, want %v", held(), want) })
	}
	follows("start", map[string]string{"1001@internal": base[0].App, "1002@internal": base[1].App, "1953@internal": base[2].App})
	lists := func() int {
		n := 0
		for _, a := range srv.Actions() {
			if a == "ExtensionStateList" {
				n++
			}
		}
		return n
	}
	before := lists()
	srv.SetHintStatus("1953", "internal", 0, "Idle") // a device change
	time.Sleep(300 * time.Millisecond)
	if lists() != before {
		t.Fatal("a device change's ExtensionStatus made the feed read the hints again")
	}
	// Added 1952, changed 1001's devices, removed 1953.
	srv.Reload(amitest.Hint{Exten: "1001", Context: "internal", App: "Custom:rec1953,CustomPresence:1001", Status: 1, StatusText: "InUse"},
		base[1], amitest.Hint{Exten: "1952", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", Status: 4, StatusText: "Unavailable"})
	follows("reload", map[string]string{"1001@internal": "Custom:rec1953,CustomPresence:1001", "1002@internal": base[1].App,
		"1952@internal": "PJSIP/1002,CustomPresence:1002"})
	// Only a removal: the survivors' burst repeats their states.
	srv.Reload(base[1])
	follows("removal", map[string]string{"1002@internal": base[1].App})
}

// Asterisk restarting under a connected feed (BEHAVIOUR.md 4.14): while it
// boots, logins succeed, ExtensionStateList is empty and PresenceStateList
// unknown; none of that is taken for an empty dialplan. Once it has
// booted, the hints and presence are read again.
func TestFeedThroughAsteriskBoot(t *testing.T) {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", Status: 4, StatusText: "Unavailable"})
	tb := hints.NewTable()
	r := newRecorder()
	f := &Feed{Addr: srv.Addr(), User: "ami", Secret: "ami", Log: zerolog.Nop(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Presence: r, Hints: tb}
	start(t, f)
	waitHints := func(what string, n int) {
		t.Helper()
		testenv.Eventually(t, fmt.Sprintf("%s: %d hints", what, n), func() bool { return tb.Len() == n },
			func() string { return fmt.Sprint(tb.Len(), " hints") })
	}
	waitHints("first read", 1)
	srv.Restart()
	// The feed logs in again and again while Asterisk boots.
	testenv.Eventually(t, "the feed trying again while Asterisk boots", func() bool {
		n := 0
		for _, a := range srv.Actions() {
			if a == "PresenceStateList" {
				n++
			}
		}
		return n >= 4
	})
	if tb.Len() != 1 {
		t.Fatalf("a booting Asterisk's answers emptied the hints: %d", tb.Len())
	}
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", Status: 4, StatusText: "Unavailable"},
		amitest.Hint{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", Status: 4, StatusText: "Unavailable"})
	srv.SetPresenceQuietly("CustomPresence:1002", amitest.Presence{State: "away"})
	srv.LoadDialplan()
	srv.Booted()
	waitHints("after boot", 2)
	r.await(t, "CustomPresence:1002=away")
}

// callCounter counts what the feed hands a CallSink.
type callCounter struct {
	mu             sync.Mutex
	events, resync int
}

func (c *callCounter) CallEvent(calls.Fields, time.Time) {
	c.mu.Lock()
	c.events++
	c.mu.Unlock()
}

func (c *callCounter) ResyncCalls([]calls.Fields, time.Time) {
	c.mu.Lock()
	c.resync++
	c.mu.Unlock()
}

// An account that may not list channels (no "reporting" in its write
// classes: Asterisk answers "Permission denied"): the feed comes up all
// the same, with presence and hints, and follows the calls' events.
func TestFeedWithoutChannelList(t *testing.T) {
	srv, err := amitest.New("ami", "ami")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Refuse("CoreShowChannels")
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"})
	r := newRecorder()
	f := r.feed(srv.Addr())
	cc := &callCounter{}
	f.Calls = cc
	start(t, f)
	r.await(t, "hints")
	testenv.Eventually(t, "the feed up", func() bool { return ok(f) })
	srv.Call("Event: Newchannel\r\nChannel: PJSIP/1001-00000000\r\nChannelState: 4\r\nUniqueid: 1.0\r\nLinkedid: 1.0\r\n\r\n")
	counts := func() (events, resync int) {
		cc.mu.Lock()
		defer cc.mu.Unlock()
		return cc.events, cc.resync
	}
	testenv.Eventually(t, "the feed up with the call's event", func() bool { events, _ := counts(); return ok(f) && events == 1 },
		func() string { events, _ := counts(); return fmt.Sprintf("feed up: %v, %d call events", ok(f), events) })
	if _, resync := counts(); resync != 0 {
		t.Fatalf("%d resyncs from a refused list", resync)
	}
}

func ok(f *Feed) bool { up, _ := f.Status(); return up }
