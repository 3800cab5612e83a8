package xuc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/clip"
)

// maxSubscribed bounds the numbers one client watches.
const maxSubscribed = 5000

// writeTimeout bounds one write to the client: one that stops reading is
// closed.
const writeTimeout = 10 * time.Second

// conn is one client's WebSocket. Its state is what the change log said
// last; mu is held while the state changes and while what it makes is
// written, so that a client never gets a status older than one it got.
type conn struct {
	s *Server
	u User
	c *websocket.Conn

	mu         sync.Mutex
	hints      map[string]*hints.State // by the hub's key
	calls      map[string][]calls.Call // by site and lower-case device
	dnd        bool
	fwd        forward.Forwards
	vm         voicemail.Count
	subscribed map[string]int // number -> the status last sent
	status     int            // the phone's, last sent
	config     UserConfig     // last sent
}

func newConn(s *Server, u User, c *websocket.Conn) *conn {
	return &conn{s: s, u: u, c: c, hints: map[string]*hints.State{}, calls: map[string][]calls.Call{},
		fwd: forward.Forwards{User: u.Extension}, vm: voicemail.Count{Mailbox: u.Mailbox}, subscribed: map[string]int{}}
}

// send writes one message; mu is held.
func (c *conn) send(ctx context.Context, msgType string, msg any) {
	data, _ := json.Marshal(Out{MsgType: msgType, CtiMessage: msg})
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := c.c.Write(wctx, websocket.MessageText, data); err != nil {
		_ = c.c.CloseNow()
	}
}

func (c *conn) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() { _ = c.c.CloseNow() }()
	sub, snap := c.s.cfg.Hub.Subscribe(watch.Filter{All: true}, nil)
	defer sub.Close()
	c.mu.Lock()
	for _, ev := range snap.Items {
		c.apply(ctx, ev, false)
	}
	c.status = c.phoneStatus()
	c.config = c.userConfig()
	c.send(ctx, "UserConfigUpdate", c.config)
	c.send(ctx, "PhoneStatusUpdate", PhoneStatus{StatusName(c.status)})
	c.send(ctx, "VoiceMailStatusUpdate", c.voiceMail())
	for _, cs := range c.myCalls() {
		for _, e := range CallEvents(nil, cs, c.u.Extension, c.u.Login) {
			c.send(ctx, "PhoneEvent", e)
		}
	}
	c.mu.Unlock()
	go c.read(ctx, cancel)
	err := sub.Follow(ctx, func(evs []*watch.Event) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range evs {
			c.apply(ctx, ev, true)
		}
	})
	var dropped *watch.DroppedError
	if errors.As(err, &dropped) {
		// Hopelessly behind: the client reconnects and starts afresh.
		_ = c.c.Close(websocket.StatusTryAgainLater, "dropped: too far behind")
	}
}

// apply takes one change; with tell, it sends what the change makes for
// this client. mu is held.
func (c *conn) apply(ctx context.Context, ev *watch.Event, tell bool) {
	switch val := ev.Value.(type) {
	case hints.State:
		st := val
		c.hints[ev.Key] = &st
		if st.Site != c.s.cfg.Site || !tell {
			return
		}
		if last, ok := c.subscribed[st.Exten]; ok {
			if now := c.numberStatus(st.Exten); now != last {
				c.subscribed[st.Exten] = now
				c.send(ctx, "PhoneHintStatusEvent", HintStatus{st.Exten, now})
			}
		}
		if st.Exten == c.u.Extension {
			if now := c.phoneStatus(); now != c.status {
				c.status = now
				c.send(ctx, "PhoneStatusUpdate", PhoneStatus{StatusName(now)})
			}
		}
	case hints.ProviderPresence:
		if user, err := presence.ParseProvider(ev.Key); err == nil && user == c.u.Extension {
			c.dnd = val.Value.State == presence.DND
			c.configChanged(ctx, tell)
		}
	case forward.Forwards:
		if val.User == c.u.Extension {
			c.fwd = val
			c.configChanged(ctx, tell)
		}
	case voicemail.Count:
		if val.Mailbox == c.u.Mailbox && val.Site == c.s.cfg.Site {
			c.vm = val
			if tell {
				c.send(ctx, "VoiceMailStatusUpdate", c.voiceMail())
			}
		}
	case calls.DeviceCalls:
		d := val
		k := d.Site + "/" + strings.ToLower(d.Device)
		before := c.calls[k]
		if len(d.Calls) == 0 {
			delete(c.calls, k)
		} else {
			c.calls[k] = d.Calls
		}
		if tell && d.Site == c.s.cfg.Site && c.mine(d.Device) {
			for _, e := range CallEvents(before, d.Calls, c.u.Extension, c.u.Login) {
				c.send(ctx, "PhoneEvent", e)
			}
		}
	}
}

func (c *conn) configChanged(ctx context.Context, tell bool) {
	if now := c.userConfig(); tell && now != c.config {
		c.config = now
		c.send(ctx, "UserConfigUpdate", now)
	}
}

func (c *conn) numberStatus(number string) int {
	st, ok := hintOf(c.hints, number, c.s.cfg.Site)
	if !ok {
		return Status(0, false)
	}
	return Status(st.Extension, true)
}

func (c *conn) phoneStatus() int { return c.numberStatus(c.u.Extension) }

func (c *conn) userConfig() UserConfig {
	return UserConfig{UserID: c.u.Login, DNDEnabled: c.dnd,
		UncFwdEnabled: c.fwd.Unconditional.Enabled, UncFwdDestination: c.fwd.Unconditional.Destination,
		BusyFwdEnabled: c.fwd.Busy.Enabled, BusyFwdDestination: c.fwd.Busy.Destination,
		NaFwdEnabled: c.fwd.NoAnswer.Enabled, NaFwdDestination: c.fwd.NoAnswer.Destination,
		LineNumber: c.u.Extension, VoiceMailID: c.u.Mailbox}
}

func (c *conn) voiceMail() VoiceMail {
	w := 0
	if c.vm.Waiting() {
		w = 1
	}
	return VoiceMail{VoiceMailID: c.u.Mailbox, NewMessages: c.vm.New, WaitingMessages: w, OldMessages: c.vm.Old}
}

// devices are the user's phone's devices: its hint's.
func (c *conn) devices() []string {
	st, ok := hintOf(c.hints, c.u.Extension, c.s.cfg.Site)
	if !ok {
		return nil
	}
	return st.Devices
}

func (c *conn) mine(device string) bool {
	for _, d := range c.devices() {
		if strings.EqualFold(d, device) {
			return true
		}
	}
	return false
}

// myCalls are the calls on the user's devices, by device.
func (c *conn) myCalls() [][]calls.Call {
	var out [][]calls.Call
	for _, d := range c.devices() {
		if cs := c.calls[c.s.cfg.Site+"/"+strings.ToLower(d)]; len(cs) > 0 {
			out = append(out, cs)
		}
	}
	return out
}

// in is a client's message: claz and command say which; the other
// members are the command's (members xuc clients add and presenced does
// not use are ignored).
type in struct {
	Claz         string   `json:"claz"`
	Command      string   `json:"command"`
	PhoneNumbers []string `json:"phoneNumbers"`
	State        *bool    `json:"state"`
	Destination  *string  `json:"destination"`
	UniqueID     string   `json:"uniqueId"`
}

func (c *conn) read(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	for {
		typ, data, err := c.c.Read(ctx)
		if err != nil {
			return
		}
		var m in
		if typ != websocket.MessageText {
			err = errors.New("a binary message: send JSON text")
		} else if err = json.Unmarshal(data, &m); err != nil {
			err = fmt.Errorf("not a JSON object: %s", clip.Clip(err.Error()))
		}
		if err != nil {
			c.fail(ctx, "", presence.Errorf(presence.CodeInvalidArgument, "%v", err))
			continue
		}
		if err := c.handle(ctx, m); err != nil {
			c.fail(ctx, m.Command, err)
		}
	}
}

func (c *conn) fail(ctx context.Context, command string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.send(ctx, "Error", ErrorMessage{Error: presence.ErrorMessage(err), Code: string(presence.ErrorCode(err)), Command: clip.Clip(command)})
	c.s.cfg.Log.Info().Str("login", c.u.Login).Str("command", clip.Clip(command)).Str("result", string(presence.ErrorCode(err))).Msg("xuc command refused")
}

// commandTimeout bounds one command's work (a write to Asterisk).
const commandTimeout = 15 * time.Second

func (c *conn) handle(ctx context.Context, m in) error {
	if m.Claz == "ping" {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.send(ctx, "Pong", struct{}{})
		return nil
	}
	if m.Claz != "web" {
		return presence.Errorf(presence.CodeInvalidArgument, "unknown claz %q (web, ping)", clip.Clip(m.Claz))
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch m.Command {
	case "subscribeToPhoneHints":
		return c.subscribe(ctx, m.PhoneNumbers)
	case "unsubscribeFromAllPhoneHints":
		c.mu.Lock()
		c.subscribed = map[string]int{}
		c.mu.Unlock()
		return nil
	case "dnd":
		if m.State == nil {
			return presence.Errorf(presence.CodeInvalidArgument, "dnd needs \"state\" (true or false)")
		}
		return c.s.cfg.Presence.SetDND(ctx, c.u.Extension, *m.State)
	case "uncFwd", "busyFwd", "naFwd":
		k := map[string]forward.Kind{"uncFwd": forward.Unconditional, "busyFwd": forward.Busy, "naFwd": forward.NoAnswer}[m.Command]
		if m.State == nil {
			return presence.Errorf(presence.CodeInvalidArgument, "%s needs \"state\" (true or false)", m.Command)
		}
		dest := ""
		if m.Destination != nil {
			dest = *m.Destination
		}
		_, err := c.s.cfg.Forwards.Set(ctx, c.u.Extension, k, *m.State, dest)
		return err
	case "dial":
		if m.Destination == nil {
			return presence.Errorf(presence.CodeInvalidArgument, "dial needs \"destination\"")
		}
		return c.dial(ctx, *m.Destination)
	case "hangup":
		return c.hangup(ctx, m.UniqueID)
	}
	return presence.Errorf(presence.CodeInvalidArgument, "unknown command %q", clip.Clip(m.Command))
}

func (c *conn) subscribe(ctx context.Context, numbers []string) error {
	for _, n := range numbers {
		if err := presence.ValidateUser(n); err != nil {
			return presence.Errorf(presence.CodeInvalidArgument, "phone number %q: not a number presenced can watch", clip.Clip(n))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subscribed)+len(numbers) > maxSubscribed {
		return presence.Errorf(presence.CodeInvalidArgument, "at most %d phone numbers", maxSubscribed)
	}
	for _, n := range numbers {
		st := c.numberStatus(n)
		c.subscribed[n] = st
		c.send(ctx, "PhoneHintStatusEvent", HintStatus{n, st})
	}
	return nil
}

func (c *conn) dial(ctx context.Context, number string) error {
	if c.s.cfg.Calls == nil {
		return presence.Errorf(presence.CodeNotFound, "calls need AMI (PRESENCED_AMI_ADDR)")
	}
	c.mu.Lock()
	devs := c.devices()
	c.mu.Unlock()
	for _, d := range devs {
		if calls.Dialable(d) {
			// The dial policy, limits and audit line are the Dialer's.
			return c.s.cfg.Calls.Dial(ctx, c.u.Extension, d, number)
		}
	}
	return presence.Errorf(presence.CodeNotFound, "the phone of %s has no device to ring (its hint %s)", c.u.Login, c.u.Extension)
}

// hangup hangs up the user's call with uniqueId; without one, the call
// in progress (answered and not held, else ringing or dialing).
func (c *conn) hangup(ctx context.Context, uniqueID string) error {
	if c.s.cfg.Calls == nil {
		return presence.Errorf(presence.CodeNotFound, "calls need AMI (PRESENCED_AMI_ADDR)")
	}
	c.mu.Lock()
	var pick *calls.Call
	rank := func(s calls.State) int {
		switch s {
		case calls.Established:
			return 3
		case calls.Ringing, calls.Dialing:
			return 2
		}
		return 1
	}
	for _, cs := range c.myCalls() {
		for i := range cs {
			cl := cs[i]
			if uniqueID != "" {
				if cl.UniqueID == uniqueID {
					pick = &cl
				}
				continue
			}
			if pick == nil || rank(cl.State) > rank(pick.State) {
				pick = &cl
			}
		}
	}
	c.mu.Unlock()
	if pick == nil {
		return presence.Errorf(presence.CodeNotFound, "no call to hang up")
	}
	if err := c.s.cfg.Calls.Hangup(ctx, pick.Channel); err != nil {
		return presence.WrapError(presence.CodeAsteriskRejected, err, "hanging up")
	}
	return nil
}
