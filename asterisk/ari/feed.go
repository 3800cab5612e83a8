package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/reconnect"
)

// DeviceSink is what the feed feeds (hints.Table).
type DeviceSink interface {
	// Devices returns the devices to follow.
	Devices() []string
	// SetDevice takes a device's state.
	SetDevice(name string, s hints.DeviceState) []hints.State
	// DevicesChanged is closed when Devices next changes.
	DevicesChanged() <-chan struct{}
}

// Feed keeps device states in step with Asterisk: it holds the event
// websocket of the application, subscribes it to the devices presenced
// needs, reads their states after every (re)connect, and applies
// DeviceStateChanged events.
type Feed struct {
	Client *Client
	App    string
	// Devices names the devices to follow (those of every hint) and takes
	// their states.
	Devices DeviceSink
	// OnUp is called after each (re)connect and its resync, on the feed's
	// goroutine.
	OnUp func()
	// OnFollow is called, on the feed's goroutine, after the feed started
	// following devices it did not follow (hints changed).
	OnFollow func()
	// OnStasis runs a channel that entered the application, each in its
	// own goroutine (at most MaxStasis at once); it must send the channel
	// back to the dialplan, and bound its own time: its context is not
	// cancelled when the feed stops, and Run waits for it.
	OnStasis func(ctx context.Context, ev StasisStart)
	// MaxStasis bounds the Stasis channels handled at once (default 256).
	MaxStasis int
	// ResyncEvery re-reads every device this often while connected, a net
	// under events Asterisk may not have sent (default 5m).
	ResyncEvery time.Duration

	stasis sync.WaitGroup
	sem    chan struct{}
	Log    zerolog.Logger
	// MinBackoff and MaxBackoff bound the wait between attempts (1s, 30s).
	MinBackoff, MaxBackoff time.Duration

	once sync.Once

	reconnect.State // Status and Resyncs

	mu         sync.Mutex
	startup    string
	subscribed []string
}

// eventTypes are the events presenced reads; Asterisk is asked to send
// only these (the app's eventFilter), and others are ignored anyway.
var eventTypes = []string{"DeviceStateChanged", "StasisStart"}

func (f *Feed) init() {
	f.once.Do(func() {
		n := f.MaxStasis
		if n <= 0 {
			n = 256
		}
		f.sem = make(chan struct{}, n)
	})
}

// Run follows Asterisk until ctx ends, reconnecting with capped, jittered,
// doubling backoff and logging the first failure, a different one, and the
// recovery.
func (f *Feed) Run(ctx context.Context) {
	f.init()
	defer f.stasis.Wait()
	reconnect.Loop(ctx, f.Log, "ARI", "device states are not followed", f.MinBackoff, f.MaxBackoff, f.session, func(err error) { f.SetStatus(false, err) })
}

func (f *Feed) wsURL() (string, error) {
	u, err := url.Parse(strings.TrimSuffix(f.Client.URL, "/") + "/events")
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("ARI URL %q is not http or https", f.Client.URL)
	}
	// The credentials go in an Authorization header, never in the URL
	// (api_key=): a dial error quotes the URL, and errors reach the log
	// and /readyz.
	u.RawQuery = url.Values{"app": {f.App}}.Encode()
	return u.String(), nil
}

// session is one websocket connection: connect, resync, events.
func (f *Feed) session(ctx context.Context, up func()) error {
	wsURL, err := f.wsURL()
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ws, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {f.Client.basicAuth()}}})
	cancel()
	if err != nil {
		return fmt.Errorf("connecting the ARI event websocket: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	events := make(chan []byte, 1024)
	readErr := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	// The reader only reads: events wait in the channel while a resync runs.
	go func() {
		for {
			_, data, err := ws.Read(sctx)
			f.Log.Trace().Bytes("frame", data).Msg("ari received")
			if err != nil {
				readErr <- fmt.Errorf("ARI event websocket: %w", err)
				return
			}
			select {
			case events <- data:
			case <-sctx.Done():
				return
			}
		}
	}()
	// Taken before the devices are read, so that no change falls between.
	changed := f.Devices.DevicesChanged()
	if err := f.resync(ctx, true); err != nil {
		return err
	}
	f.SetStatus(true, nil)
	up()
	if f.OnUp != nil {
		f.OnUp()
	}
	every := f.ResyncEvery
	if every <= 0 {
		every = 5 * time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-changed:
			changed = f.Devices.DevicesChanged()
			if err := f.resync(ctx, false); err != nil {
				return err
			}
			if f.OnFollow != nil {
				f.OnFollow()
			}
		case <-tick.C:
			if err := f.resync(ctx, true); err != nil {
				return err
			}
		case data := <-events:
			f.event(ctx, data)
		case err := <-readErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// resync makes Asterisk's application follow exactly the devices needed
// and reads their states. After a (re)connect it subscribes every device
// again (subscriptions do not survive an Asterisk restart, which the
// startup time reveals); when the devices changed, only the difference.
func (f *Feed) resync(ctx context.Context, full bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	startup, _, err := f.Client.Info(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	restarted := f.startup != "" && f.startup != startup
	f.startup = startup
	had := slices.Clone(f.subscribed)
	f.mu.Unlock()
	if restarted {
		f.Log.Info().Str("startup_time", startup).Msg("Asterisk restarted: subscribing and reading every device again")
	}
	if full {
		if err := f.Client.SetEventFilter(ctx, f.App, eventTypes); err != nil {
			return err
		}
		had = nil
	}
	want := f.Devices.Devices()
	slices.Sort(want)
	var add, drop []string
	for _, d := range want {
		if !slices.Contains(had, d) {
			add = append(add, d)
		}
	}
	for _, d := range had {
		if !slices.Contains(want, d) {
			drop = append(drop, d)
		}
	}
	for chunk := range slices.Chunk(add, 200) {
		if err := f.Client.Subscribe(ctx, f.App, sources(chunk)); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(drop, 200) {
		if err := f.Client.Unsubscribe(ctx, f.App, sources(chunk)); err != nil {
			var he *HTTPError
			if !(asHTTP(err, &he) && he.Status == 422) { // already gone
				return err
			}
		}
	}
	// Read the states after subscribing: a change after the read arrives
	// as an event, one before it is in the read.
	read := add
	if full {
		read = want
	}
	for _, d := range read {
		st, err := f.Client.DeviceState(ctx, d)
		if err != nil {
			return err
		}
		f.Devices.SetDevice(d, hints.ParseDeviceState(st))
	}
	f.mu.Lock()
	f.subscribed = want
	f.mu.Unlock()
	f.Resynced()
	return nil
}

func sources(devs []string) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = "deviceState:" + d
	}
	return out
}

// event applies one websocket message; types presenced does not use, and
// malformed messages, are ignored.
func (f *Feed) event(ctx context.Context, data []byte) {
	var ev struct {
		Type        string `json:"type"`
		DeviceState struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"device_state"`
		Args    []string `json:"args"`
		Channel struct {
			ID     string `json:"id"`
			Caller struct {
				Number string `json:"number"`
			} `json:"caller"`
		} `json:"channel"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		f.Log.Debug().Err(err).Msg("ARI event not understood")
		return
	}
	switch {
	case ev.Type == "DeviceStateChanged" && ev.DeviceState.Name != "":
		f.Devices.SetDevice(ev.DeviceState.Name, hints.ParseDeviceState(ev.DeviceState.State))
	case ev.Type == "StasisStart" && ev.Channel.ID != "" && f.OnStasis != nil:
		st := StasisStart{Channel: &Channel{Client: f.Client, ID: ev.Channel.ID}, Caller: ev.Channel.Caller.Number, Args: ev.Args}
		select {
		case f.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		f.stasis.Add(1)
		// A channel taken in is seen through even when presenced is
		// stopping (Run waits for it): cut short, it would stay in Stasis.
		hctx := context.WithoutCancel(ctx)
		go func() {
			defer f.stasis.Done()
			defer func() { <-f.sem }()
			f.OnStasis(hctx, st)
		}()
	}
}
