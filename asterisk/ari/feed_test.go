package ari

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/core/hints"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ari/aritest"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/internal/transcript"
)

type devices struct {
	mu      sync.Mutex
	state   map[string]string
	list    []string
	notify  chan string
	changed chan struct{}
}

func newDevices(list ...string) *devices {
	return &devices{state: map[string]string{}, list: list, notify: make(chan string, 1000)}
}

func (d *devices) set(name, st string) {
	d.mu.Lock()
	d.state[name] = st
	d.mu.Unlock()
	select {
	case d.notify <- name + "=" + st:
	default: // a benchmark does not wait for them
	}
}

func (d *devices) SetDevice(name string, st hints.DeviceState) []hints.State {
	d.set(name, st.String())
	return nil
}

func (d *devices) Devices() []string { return d.get() }

func (d *devices) DevicesChanged() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.changed == nil {
		d.changed = make(chan struct{})
	}
	return d.changed
}

// add follows one more device, as a new hint does.
func (d *devices) add(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, name)
	if d.changed != nil {
		close(d.changed)
		d.changed = nil
	}
}

func (d *devices) get() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.list...)
}

func (d *devices) await(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-d.notify:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q", want)
		}
	}
}

func fakeARI(t *testing.T) (*aritest.Server, *Client) {
	t.Helper()
	srv, err := aritest.New("ari", "ari")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, &Client{URL: srv.URL(), User: "ari", Password: "ari"}
}

func runFeed(t *testing.T, f *Feed) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestFeed(t *testing.T) {
	srv, cl := fakeARI(t)
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	d := newDevices("PJSIP/1001", "Stasis:presenced-dnd-1001")
	f := &Feed{Client: cl, App: "presenced", Devices: d, Log: zerolog.Nop(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	runFeed(t, f)
	d.await(t, "PJSIP/1001=NOT_INUSE")
	d.await(t, "Stasis:presenced-dnd-1001=UNKNOWN")

	// Events.
	srv.SetDevice("PJSIP/1001", "RINGING")
	d.await(t, "PJSIP/1001=RINGING")
	if err := (DND{Client: cl}).SetDND(context.Background(), "1001", true); err != nil {
		t.Fatal(err)
	}
	d.await(t, "Stasis:presenced-dnd-1001=BUSY")

	// A change while the websocket is down is read after the reconnect.
	srv.DropWebsockets()
	srv.SetDevice("PJSIP/1001", "INUSE")
	d.await(t, "PJSIP/1001=INUSE")

	// Asterisk restarts: subscriptions are gone; the feed subscribes again.
	srv.Restart()
	testenv.Eventually(t, "resubscribed", func() bool { return len(srv.Subscriptions("presenced")) == 2 },
		func() string { return fmt.Sprint(srv.Subscriptions("presenced")) })
	srv.SetDevice("PJSIP/1001", "NOT_INUSE")
	d.await(t, "PJSIP/1001=NOT_INUSE")

	// A new hint's device is followed as soon as the devices change.
	srv.SetDevice("PJSIP/1002", "UNAVAILABLE")
	d.add("PJSIP/1002")
	d.await(t, "PJSIP/1002=UNAVAILABLE")

	// Every device name went escaped in its path.
	for _, r := range srv.Requests() {
		if strings.Contains(r, "/deviceStates/PJSIP/") {
			t.Errorf("unescaped device name: %s", r)
		}
	}
}

// Every recorded ARI event, of whatever type, is taken or ignored without
// harm; the DeviceStateChanged ones reach OnDevice.
func TestRecordedEvents(t *testing.T) {
	srv, cl := fakeARI(t)
	d := newDevices("PJSIP/1001")
	f := &Feed{Client: cl, App: "presenced", Devices: d, Log: zerolog.Nop()}
	runFeed(t, f)
	d.await(t, "PJSIP/1001=INVALID")
	file, err := os.Open(transcript.Dir() + "/ari-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, devs := 0, 0
	for sc.Scan() {
		line := sc.Bytes()
		if strings.Contains(string(line), `"DeviceStateChanged"`) {
			devs++
		}
		srv.SendRaw("presenced", append([]byte(nil), line...))
		n++
	}
	srv.SendRaw("presenced", []byte(`{"type":"ChannelToneDetected","channel":{}}`))
	srv.SendRaw("presenced", []byte(`not json`))
	srv.SetDevice("PJSIP/1001", "BUSY") // still alive and in order after all that
	d.await(t, "PJSIP/1001=BUSY")
	if n < 50 || devs == 0 {
		t.Fatalf("%d events played, %d device changes", n, devs)
	}
}

func TestClientErrors(t *testing.T) {
	srv, cl := fakeARI(t)
	ctx := context.Background()
	var he *HTTPError
	if err := cl.SetDeviceState(ctx, "PJSIP/1001", "BUSY"); !errors.As(err, &he) || he.Status != 409 {
		t.Fatalf("uncontrolled device: %v", err)
	}
	if err := cl.SetDeviceState(ctx, "Stasis:x", "UNKNOWN"); !errors.As(err, &he) || he.Status != 500 || he.Message != "Unknown device" {
		t.Fatalf("UNKNOWN state: %v", err)
	}
	if err := cl.Subscribe(ctx, "nosuchapp", []string{"deviceState:PJSIP/1001"}); !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("unknown app: %v", err)
	}
	bad := &Client{URL: srv.URL(), User: "ari", Password: "wrong"}
	if _, _, err := bad.Info(ctx); !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("wrong password: %v", err)
	}
}

// The periodic resync catches a change Asterisk sent no event for.
func TestPeriodicResync(t *testing.T) {
	srv, cl := fakeARI(t)
	d := newDevices("Stasis:x")
	f := &Feed{Client: cl, App: "presenced", Devices: d, Log: zerolog.Nop(), ResyncEvery: 50 * time.Millisecond}
	runFeed(t, f)
	d.await(t, "Stasis:x=UNKNOWN")
	if err := cl.SetDeviceState(context.Background(), "Stasis:x", "BUSY"); err != nil {
		t.Fatal(err)
	}
	d.await(t, "Stasis:x=BUSY")
	// DELETE sends no event (BEHAVIOUR.md 4.4): only a resync sees it.
	if err := cl.do(context.Background(), "DELETE", devicePath("Stasis:x"), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if srv.Device("Stasis:x") != "UNKNOWN" {
		t.Fatal("fake did not delete")
	}
	d.await(t, "Stasis:x=UNKNOWN")
}

// Any websocket message is taken or ignored without a panic.
func FuzzEvent(f *testing.F) {
	lines, _ := os.ReadFile(transcript.Dir() + "/ari-events.jsonl")
	for _, l := range strings.Split(string(lines), "\n")[:20] {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"type":"StasisStart","args":null,"channel":{"id":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fd := &Feed{Client: &Client{}, Devices: newDevices(), Log: zerolog.Nop(),
			OnStasis: func(context.Context, StasisStart) {}}
		fd.init()
		fd.event(context.Background(), data)
		fd.stasis.Wait()
	})
}
