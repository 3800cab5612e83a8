package ami

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/internal/reconnect"
	"github.com/presenced/presenced/presence"
)

// Feed keeps presenced's view of presence and hints in step with Asterisk
// over AMI.
type Feed struct {
	Addr, User, Secret string
	// OnPresence receives every provider's presence: the whole list after
	// each (re)connect, then each change.
	OnPresence func(provider string, p hints.ProviderPresence)
	// OnHints receives the running dialplan's hints after each
	// (re)connect: they replace any others.
	OnHints func(hs []hints.Hint)
	Log     zerolog.Logger
	// Timeout bounds connecting, logging in and each list (default 10s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts (1s, 30s).
	MinBackoff, MaxBackoff time.Duration

	// OnUp is called after each successful (re)connect and resync, on the
	// feed's goroutine (writes that waited for Asterisk can go now).
	OnUp func()

	reconnect.State // Status and Resyncs

	mu  sync.Mutex
	cur *conn // the live connection, for Writer
}

func (f *Feed) setState(c *conn, err error) {
	f.mu.Lock()
	f.cur = c
	f.mu.Unlock()
	f.SetStatus(c != nil, err)
}

// Run connects, resyncs and follows events until ctx ends, reconnecting
// with capped, jittered, doubling backoff. It logs the first failure, then
// only a failure that differs, and one line when it recovers.
func (f *Feed) Run(ctx context.Context) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	session := func(ctx context.Context, up func()) error { return f.session(ctx, timeout, up) }
	reconnect.Loop(ctx, f.Log.With().Str("addr", f.Addr).Logger(), "AMI", "presence changed outside presenced is not seen",
		f.MinBackoff, f.MaxBackoff, session, func(err error) { f.setState(nil, err) })
}

// session is one connection: login, resync, events until it fails.
func (f *Feed) session(ctx context.Context, timeout time.Duration, up func()) error {
	c, err := dial(ctx, f.Addr, f.User, f.Secret, timeout)
	if err != nil {
		return err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	synced, err := f.resync(ctx, c, timeout)
	if err != nil {
		return err
	}
	f.setState(c, nil)
	up()
	if f.OnUp != nil {
		f.OnUp()
	}
	for {
		ev, err := c.nextEvent(ctx)
		if err != nil {
			return err
		}
		switch name := ev.msg.Field("Event"); {
		case strings.EqualFold(name, "PresenceStateChange"):
			if ev.n > synced.presence { // older ones are in the list already
				f.presence(ev.msg.Field("Presentity"), ev.msg)
			}
		case strings.EqualFold(name, "FullyBooted"):
			// Asterisk greets every login with one; a later one means it
			// finished booting (or restarted) while we were connected.
			if ev.n > synced.end {
				if synced, err = f.resync(ctx, c, timeout); err != nil {
					return err
				}
			}
		}
	}
}

type syncMark struct {
	presence uint64 // stream position of the PresenceStateList response
	end      uint64 // stream position after the last list
}

// resync reads every presence and the running dialplan's hints.
func (f *Feed) resync(ctx context.Context, c *conn, timeout time.Duration) (syncMark, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mark syncMark
	frames, n, err := c.action(ctx, goami2.NewAction("PresenceStateList"), true)
	if err != nil {
		return mark, err
	}
	mark.presence = n
	for _, m := range frames[1:] {
		if strings.EqualFold(m.Field("Event"), "PresenceStateChange") {
			f.presence(m.Field("Presentity"), m)
		}
	}
	frames, _, err = c.action(ctx, goami2.NewAction("ExtensionStateList"), true)
	var ae *ActionError
	switch {
	case errors.As(err, &ae) && strings.Contains(ae.Message, "No dialplan hints"):
		frames = frames[:1] // a dialplan without hints
	case err != nil:
		return mark, err
	}
	var hs []hints.Hint
	for _, m := range frames[1:] {
		if !strings.EqualFold(m.Field("Event"), "ExtensionStatus") {
			continue
		}
		h := hints.Hint{Context: m.Field("Context"), Exten: m.Field("Exten")}
		h.Devices, h.Providers = hints.ParseHintApp(m.Field("Hint"))
		hs = append(hs, h)
	}
	if f.OnHints != nil {
		f.OnHints(hs)
	}
	c.mu.Lock()
	mark.end = c.seen
	c.mu.Unlock()
	f.Resynced()
	return mark, nil
}

// presence hands one provider's presence, from a PresenceStateChange
// event or list entry, to OnPresence. Both carry subtype and message
// C-escaped (unlike PresenceStatus, PresenceState and Getvar, which send
// them raw): they are unescaped here, and only here.
func (f *Feed) presence(provider string, m *goami2.Message) {
	if provider == "" || f.OnPresence == nil {
		return
	}
	var p hints.ProviderPresence
	st, err := presence.ParseState(m.Field("Status"))
	if err != nil {
		p.Invalid = true
	}
	p.Value = presence.Value{State: st, Subtype: unescapeC(m.Field("Subtype")), Message: unescapeC(m.Field("Message"))}
	f.OnPresence(provider, p)
}
