package ami

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/reconnect"
)

// PresenceSink takes presence as Asterisk reports it (presence.Service).
type PresenceSink interface {
	Observe(provider string, v presence.Value, invalid bool)
	// ForgetEchoes is called when a connection is made, before the
	// presence list is read: events of the connection before are lost.
	ForgetEchoes()
}

// CallSink takes the channels' events and lists (calls.Book).
type CallSink interface {
	// CallEvent is one channel event (Newchannel, Newstate,
	// NewConnectedLine, Hold, Unhold, Rename, VarSet, Hangup).
	CallEvent(ev calls.Fields, at time.Time)
	// ResyncCalls is the CoreShowChannels list after each (re)connect
	// and Asterisk restart: it replaces what was known.
	ResyncCalls(items []calls.Fields, at time.Time)
}

// MailboxSink takes voicemail boxes' message counts.
type MailboxSink interface {
	// MailboxCounts is every box's counts (VoicemailUsersList) after each
	// (re)connect and Asterisk restart.
	MailboxCounts(cs []voicemail.Count)
	// MailboxChanged is one box's new counts (MessageWaiting).
	MailboxChanged(c voicemail.Count)
}

// callEvents are the events CallSink is given.
var callEvents = map[string]bool{"newchannel": true, "newstate": true, "newconnectedline": true, "hold": true, "unhold": true,
	"rename": true, "varset": true, "hangup": true}

// DPMASink takes the requests of Digium phone apps (DPMA messaging): the
// feed registers its methods after every (re)connect and hands it every
// DPMAMessage event; it answers through Writer.DPMARespond, and must not
// block (the feed reads every event in order).
type DPMASink interface {
	DPMAMethods() []string
	DPMARequest(requestID, method, format, params string)
}

// HintSink takes the running dialplan's hints (hints.Table).
type HintSink interface {
	ReplaceHints(hs []hints.Hint) (changed, removed int)
}

// Feed keeps presenced's view of presence and hints in step with Asterisk
// over AMI.
type Feed struct {
	Addr, User, Secret string
	// Presence receives every provider's presence: the whole list after
	// each (re)connect, then each change.
	Presence PresenceSink
	// Hints receives the running dialplan's hints after each (re)connect
	// and after each dialplan reload: they replace any others.
	Hints HintSink
	// Calls, when set, receives every channel's events, and the list of
	// channels after each (re)connect and Asterisk restart.
	Calls CallSink
	// Mailboxes, when set, receives voicemail boxes' message counts.
	Mailboxes MailboxSink
	// DPMA, when set, registers its methods with DPMA and gets phone
	// apps' requests (PRESENCED_DPMA).
	DPMA DPMASink
	Log  zerolog.Logger
	// ReloadDelay is how long the feed waits, after the ExtensionStatus
	// burst of a dialplan reload begins, before it reads the hints again
	// (default 200ms; the burst takes about 20 ms).
	ReloadDelay time.Duration
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
	c, err := dial(ctx, f.Addr, f.User, f.Secret, timeout, f.Log)
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
	if f.DPMA != nil {
		// Registrations belong to the session: made again at every
		// (re)connect. Asterisk without DPMA refuses the action: logged,
		// the rest goes on.
		for _, m := range f.DPMA.DPMAMethods() {
			a := goami2.NewAction("DPMAMessageRegister")
			a.AddField("Method", m)
			if _, _, err := c.action(ctx, a, false); err != nil {
				f.Log.Warn().Err(err).Str("method", m).Msg("DPMA: cannot register the method (is res_digium_phone loaded, and does the AMI account have the right?)")
			}
		}
	}
	up()
	if f.OnUp != nil {
		f.OnUp()
	}
	reloadDelay := f.ReloadDelay
	if reloadDelay <= 0 {
		reloadDelay = 200 * time.Millisecond
	}
	var reload *time.Timer // armed while a reload burst is being waited out
	var reloadC <-chan time.Time
	defer func() {
		if reload != nil {
			reload.Stop()
		}
	}()
	for {
		ev, err := c.nextEvent(ctx, reloadC)
		if errors.Is(err, errWake) {
			reloadC = nil
			if err := f.resyncHints(ctx, c, timeout, &synced); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		switch name := ev.msg.Field("Event"); {
		case f.Calls != nil && callEvents[strings.ToLower(name)]:
			if ev.n > synced.calls { // older ones are in the list already
				f.Calls.CallEvent(ev.msg, time.Now())
			}
		case f.Mailboxes != nil && strings.EqualFold(name, "MessageWaiting"):
			if ev.n > synced.mailboxes { // older ones are in the list already
				if c, err := voicemail.FromMessageWaiting(ev.msg); err != nil {
					f.Log.Warn().Err(err).Msg("a MessageWaiting event that cannot be read; ignored")
				} else {
					f.Mailboxes.MailboxChanged(c)
				}
			}
		case f.DPMA != nil && strings.EqualFold(name, "DPMAMessage"):
			f.DPMA.DPMARequest(ev.msg.Field("RequestID"), ev.msg.Field("Method"), ev.msg.Field("Format"), ev.msg.Field("Parameters"))
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
		case strings.EqualFold(name, "ExtensionStatus") && ev.n > synced.hints && synced.reloaded(ev.msg),
			strings.EqualFold(name, "Reload") && strings.Contains(strings.ToLower(ev.msg.Field("Module")), "pbx_config"):
			// A dialplan reload: hints may have been added, changed or
			// removed; the burst names only survivors, with their old
			// devices, so the list is read again once it is over.
			if reloadC == nil {
				if reload == nil {
					reload = time.NewTimer(reloadDelay)
				} else {
					reload.Reset(reloadDelay)
				}
				reloadC = reload.C
			}
		}
	}
}

type syncMark struct {
	presence  uint64 // stream position of the PresenceStateList response
	end       uint64 // stream position after the last list
	hints     uint64 // stream position of the last ExtensionStateList response
	calls     uint64 // stream position of the CoreShowChannels response
	mailboxes uint64 // stream position of the VoicemailUsersList response
	// The hints as the last ExtensionStateList gave them, and then the
	// Status of the last ExtensionStatus of each.
	apps   map[string]string
	status map[string]string
}

// reloaded reports whether an unsolicited ExtensionStatus belongs to the
// burst a dialplan reload sends (BEHAVIOUR.md 4.13), rather than to a
// device change: it names a hint the list did not have, carries an empty
// or different Hint (the text before the reload), or repeats the hint's
// last Status (a device change only ever sends a new one).
func (m *syncMark) reloaded(ev *goami2.Message) bool {
	if ev.Field("ActionID") != "" {
		return false
	}
	key := ev.Field("Exten") + "@" + ev.Field("Context")
	app, ok := m.apps[key]
	if !ok || ev.Field("Hint") == "" || ev.Field("Hint") != app {
		return true
	}
	last, ok := m.status[key]
	m.status[key] = ev.Field("Status")
	return ok && last == ev.Field("Status")
}

// resync reads every presence and the running dialplan's hints.
func (f *Feed) resync(ctx context.Context, c *conn, timeout time.Duration) (syncMark, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mark syncMark
	if f.Presence != nil {
		f.Presence.ForgetEchoes()
	}
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
	if err := f.resyncHints(ctx, c, timeout, &mark); err != nil {
		return mark, err
	}
	if f.Calls != nil {
		if err := f.resyncCalls(ctx, c, &mark); err != nil {
			return mark, err
		}
	}
	if f.Mailboxes != nil {
		if err := f.resyncMailboxes(ctx, c, &mark); err != nil {
			return mark, err
		}
	}
	c.mu.Lock()
	mark.end = c.seen
	c.mu.Unlock()
	f.Resynced()
	return mark, nil
}

// resyncCalls reads every channel (CoreShowChannels) and hands them on.
// An account without "reporting" in its write classes is refused it:
// presence and hints go on, and calls are known from the events that
// follow (those known before are kept, not ended).
func (f *Feed) resyncCalls(ctx context.Context, c *conn, mark *syncMark) error {
	items, n, refused, err := listItems(ctx, c, "CoreShowChannels", "CoreShowChannel")
	if err != nil {
		return err
	}
	mark.calls = n
	if refused != "" {
		f.Log.Warn().Str("message", refused).Msg("AMI refused CoreShowChannels (add reporting to the account's write classes): calls are known from the next events only")
		return nil
	}
	list := make([]calls.Fields, len(items))
	for i, m := range items {
		list[i] = m
	}
	f.Calls.ResyncCalls(list, time.Now())
	return nil
}

// listItems runs a list action that Asterisk may refuse (a module not
// loaded, a class the account lacks): refused is then its message, and
// no error. items are the list's events named item; n is the stream
// position of the response.
func listItems(ctx context.Context, c *conn, action, item string) (items []*goami2.Message, n uint64, refused string, err error) {
	frames, n, err := c.action(ctx, goami2.NewAction(action), true)
	var ae *ActionError
	switch {
	case errors.As(err, &ae):
		return nil, n, ae.Message, nil
	case err != nil:
		return nil, 0, "", err
	}
	for _, m := range frames[1:] {
		if strings.EqualFold(m.Field("Event"), item) {
			items = append(items, m)
		}
	}
	return items, n, "", nil
}

// resyncMailboxes reads every voicemail box's counts. Without
// app_voicemail Asterisk does not know the action: no boxes then.
func (f *Feed) resyncMailboxes(ctx context.Context, c *conn, mark *syncMark) error {
	items, n, refused, err := listItems(ctx, c, "VoicemailUsersList", "VoicemailUserEntry")
	if err != nil {
		return err
	}
	mark.mailboxes = n
	if refused != "" {
		f.Log.Debug().Str("message", refused).Msg("no voicemail boxes from Asterisk (is app_voicemail loaded?)")
		return nil
	}
	var cs []voicemail.Count
	for _, m := range items {
		cnt, err := voicemail.FromUserEntry(m)
		if err != nil {
			f.Log.Warn().Err(err).Msg("a voicemail box that cannot be read; left out")
			continue
		}
		cs = append(cs, cnt)
	}
	f.Mailboxes.MailboxCounts(cs)
	return nil
}

// resyncHints reads the running dialplan's hints and hands them on. An
// empty list before Asterisk said FullyBooted is not an empty dialplan:
// Asterisk answers so while it boots (BEHAVIOUR.md 4.14); the hints are
// read again at FullyBooted.
func (f *Feed) resyncHints(ctx context.Context, c *conn, timeout time.Duration, mark *syncMark) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	frames, n, err := c.action(ctx, goami2.NewAction("ExtensionStateList"), true)
	var ae *ActionError
	switch {
	case errors.As(err, &ae) && strings.Contains(ae.Message, "No dialplan hints"):
		frames = frames[:1] // a dialplan without hints
	case err != nil:
		return err
	}
	var hs []hints.Hint
	mark.apps, mark.status = map[string]string{}, map[string]string{}
	for _, m := range frames[1:] {
		if !strings.EqualFold(m.Field("Event"), "ExtensionStatus") {
			continue
		}
		h := hints.Hint{Context: m.Field("Context"), Exten: m.Field("Exten")}
		h.Devices, h.Providers = hints.ParseHintApp(m.Field("Hint"))
		hs = append(hs, h)
		mark.apps[h.Key()] = m.Field("Hint")
		mark.status[h.Key()] = m.Field("Status")
	}
	// ExtensionStatus events before the list's response are in it.
	mark.hints = n
	c.mu.Lock()
	booted := c.booted
	c.mu.Unlock()
	if len(hs) == 0 && !booted {
		f.Log.Info().Msg("AMI lists no hints before Asterisk is fully booted; reading them again when it is")
		return nil
	}
	if f.Hints != nil {
		changed, removed := f.Hints.ReplaceHints(hs)
		if changed+removed > 0 {
			f.Log.Info().Int("hints", len(hs)).Int("changed", changed).Int("removed", removed).Msg("hints read from Asterisk")
		}
	}
	return nil
}

// presence hands one provider's presence, from a PresenceStateChange
// event or list entry, to OnPresence. Both carry subtype and message
// C-escaped (unlike PresenceStatus, PresenceState and Getvar, which send
// them raw): they are unescaped here, and only here.
func (f *Feed) presence(provider string, m *goami2.Message) {
	if provider == "" || f.Presence == nil {
		return
	}
	st, err := presence.ParseState(m.Field("Status"))
	v := presence.Value{State: st, Subtype: unescapeC(m.Field("Subtype")), Message: unescapeC(m.Field("Message"))}
	f.Presence.Observe(provider, v, err != nil)
}
