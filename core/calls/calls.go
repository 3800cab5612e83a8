// Package calls keeps the calls on every channel Asterisk reports over
// AMI: for each channel, the device it belongs to, the direction, the
// other party's number and name, the state (dialing, ringing,
// established, held), since when, the unique and linked ids, and the
// channel's USR_* variables. A hint's devices select the calls of its
// user (hints.Hint.Devices).
//
// Why AMI and not ARI: ARI reports channels outside Stasis only for
// endpoints an application subscribed to, one subscription per endpoint,
// and a subscription is lost with every reconnect; AMI reports every
// channel on one connection presenced already holds for presence, and
// CoreShowChannels lists them all after a reconnect (BEHAVIOUR.md 4.15,
// 4.16). The traps recorded there are decided here:
//   - the other party is the channel's connected line (a dialed leg's own
//     caller ID is the callee itself), or the number dialed until
//     Asterisk sends one;
//   - direction: the channel that started the call (its Uniqueid is its
//     Linkedid) is outgoing, every other leg incoming; this holds for
//     live events and for CoreShowChannels, and a channel redirected
//     (blind transfer) keeps its ids and so its direction;
//   - the Hold event names the channel of the phone that pressed hold:
//     that channel's call is "held" (the phone shows it on hold), whereas
//     Asterisk's device state marks the other device ONHOLD;
//   - no Dial events come for an unregistered callee: nothing here reads
//     Dial events; the caller's channel simply ends;
//   - application data after a Redirect is stale: nothing here reads it.
package calls

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// State is a call's state on its channel.
type State string

// The states.
const (
	Dialing     State = "dialing"     // the phone called; nobody rings yet
	Ringing     State = "ringing"     // ringing (the phone rings, or the far end does)
	Established State = "established" // answered
	Held        State = "held"        // put on hold by this phone
)

// Direction says who called.
type Direction string

// The directions.
const (
	Outgoing Direction = "outgoing"
	Incoming Direction = "incoming"
)

// Call is one channel's call.
type Call struct {
	Channel   string            `json:"channel"`
	Device    string            `json:"device"`
	UniqueID  string            `json:"uniqueid"`
	LinkedID  string            `json:"linkedid"`
	Direction Direction         `json:"direction"`
	State     State             `json:"state"`
	Number    string            `json:"number,omitempty"` // the other party
	Name      string            `json:"name,omitempty"`
	Since     time.Time         `json:"since"` // in this state
	Started   time.Time         `json:"started"`
	Vars      map[string]string `json:"vars,omitempty"` // USR_* variables
}

// Fields is an AMI event or list item (goami2.Message has this method).
type Fields interface{ Field(string) string }

// Map is Fields over a map, for tests and callers without goami2.
type Map map[string]string

// Field returns a field's value.
func (m Map) Field(k string) string { return m[k] }

// Tracker keeps the calls. It is not safe for concurrent use: the AMI
// feed calls it from its one reader.
type Tracker struct {
	chans map[string]*Call
	// dialed: the number a channel dialed (its Exten at creation), the
	// other party until a connected line comes.
	dialed map[string]string
	held   map[string]bool
}

// New returns an empty tracker.
func New() *Tracker {
	return &Tracker{chans: map[string]*Call{}, dialed: map[string]string{}, held: map[string]bool{}}
}

// DeviceOf returns the device of a channel: its name without the
// sequence Asterisk appends ("PJSIP/1001-00000003" -> "PJSIP/1001",
// "Local/1001@internal-00000000;2" -> "Local/1001@internal").
func DeviceOf(channel string) string {
	i := strings.LastIndexByte(channel, '-')
	if i <= 0 || !strings.Contains(channel[:i], "/") {
		return channel
	}
	return channel[:i]
}

// stateOf maps an AMI ChannelState for a channel of the direction.
func stateOf(channelState string, dir Direction) State {
	switch channelState {
	case "6": // Up
		return Established
	case "5": // Ringing
		return Ringing
	case "0", "1", "2": // Down, Rsrvd, OffHook: a dialed leg being set up
		if dir == Incoming {
			return Ringing
		}
	}
	return Dialing // 3 Dialing, 4 Ring, 7 Busy, and anything else
}

// party cleans a caller-ID field: Asterisk says "<unknown>" for none.
func party(s string) string {
	if s == "<unknown>" {
		return ""
	}
	return s
}

// Event applies one AMI event at now and returns the calls it changed
// and the ones it ended.
func (t *Tracker) Event(ev Fields, now time.Time) (changed, ended []Call) {
	ch := ev.Field("Channel")
	switch ev.Field("Event") {
	case "Newchannel":
		if ch == "" {
			return nil, nil
		}
		c := &Call{Channel: ch, Device: DeviceOf(ch), UniqueID: ev.Field("Uniqueid"), LinkedID: ev.Field("Linkedid"), Since: now, Started: now}
		c.Direction = Incoming
		if c.UniqueID != "" && c.UniqueID == c.LinkedID {
			c.Direction = Outgoing
		}
		c.State = stateOf(ev.Field("ChannelState"), c.Direction)
		if c.Direction == Outgoing {
			if x := ev.Field("Exten"); x != "s" {
				t.dialed[ch] = x
			}
		}
		t.chans[ch] = c
		t.party(c, ev)
		return []Call{c.copy()}, nil
	case "Hangup":
		c, ok := t.chans[ch]
		if !ok {
			return nil, nil
		}
		t.forget(ch)
		return nil, []Call{c.copy()}
	case "Rename":
		c, ok := t.chans[ch]
		nn := ev.Field("Newname")
		if !ok || nn == "" {
			return nil, nil
		}
		t.forget(ch)
		c.Channel, c.Device = nn, DeviceOf(nn)
		t.chans[nn] = c
		return []Call{c.copy()}, []Call{{Channel: ch, Device: DeviceOf(ch), UniqueID: c.UniqueID, LinkedID: c.LinkedID}}
	}
	c, ok := t.chans[ch]
	if !ok {
		return nil, nil
	}
	before := *c
	beforeVars := len(c.Vars)
	switch ev.Field("Event") {
	case "Newstate":
		s := stateOf(ev.Field("ChannelState"), c.Direction)
		if t.held[ch] && s == Established {
			s = Held
		}
		t.setState(c, s, now)
		t.party(c, ev)
	case "NewConnectedLine":
		t.party(c, ev)
	case "Hold":
		t.held[ch] = true
		if c.State == Established {
			t.setState(c, Held, now)
		}
	case "Unhold":
		delete(t.held, ch)
		if c.State == Held {
			t.setState(c, Established, now)
		}
	case "VarSet":
		name := ev.Field("Variable")
		if strings.HasPrefix(name, "USR_") {
			val := ev.Field("Value")
			if c.Vars == nil {
				c.Vars = map[string]string{}
			}
			if old, had := c.Vars[name]; !had || old != val {
				c.Vars[name] = val
				return []Call{c.copy()}, nil
			}
		}
		return nil, nil
	default:
		return nil, nil
	}
	if before.State != c.State || before.Number != c.Number || before.Name != c.Name || beforeVars != len(c.Vars) {
		return []Call{c.copy()}, nil
	}
	return nil, nil
}

func (t *Tracker) setState(c *Call, s State, now time.Time) {
	if c.State != s {
		c.State, c.Since = s, now
	}
}

// party sets the other party from the event's connected line, or from
// the number the channel dialed while there is none.
func (t *Tracker) party(c *Call, ev Fields) {
	num, name := party(ev.Field("ConnectedLineNum")), party(ev.Field("ConnectedLineName"))
	if num == "" && name == "" {
		if c.Number == "" {
			c.Number = t.dialed[c.Channel]
		}
		return
	}
	c.Number, c.Name = num, name
}

func (t *Tracker) forget(ch string) {
	delete(t.chans, ch)
	delete(t.dialed, ch)
	delete(t.held, ch)
}

func (c *Call) copy() Call {
	out := *c
	if c.Vars != nil {
		out.Vars = make(map[string]string, len(c.Vars))
		for k, v := range c.Vars {
			out.Vars[k] = v
		}
	}
	return out
}

// Resync makes the tracker hold what CoreShowChannels listed at now (its
// CoreShowChannel items), after a reconnect or an Asterisk restart:
// channels not listed ended, listed ones are taken as listed. What the
// list does not carry is kept from before for a channel that was known:
// its USR_* variables, whether its phone put it on hold, the time of its
// state; a channel first seen here started Duration ago, and its state
// is as old.
func (t *Tracker) Resync(items []Fields, now time.Time) (changed, ended []Call) {
	seen := map[string]bool{}
	for _, it := range items {
		ch := it.Field("Channel")
		if ch == "" {
			continue
		}
		seen[ch] = true
		c := &Call{Channel: ch, Device: DeviceOf(ch), UniqueID: it.Field("Uniqueid"), LinkedID: it.Field("Linkedid")}
		c.Direction = Incoming
		if c.UniqueID != "" && c.UniqueID == c.LinkedID {
			c.Direction = Outgoing
		}
		c.Started = now.Add(-duration(it.Field("Duration")))
		c.State = stateOf(it.Field("ChannelState"), c.Direction)
		c.Since = c.Started
		old, known := t.chans[ch]
		if known && old.UniqueID == c.UniqueID {
			c.Vars, c.Started = old.Vars, old.Started
			if t.held[ch] && c.State == Established {
				c.State = Held
			}
			c.Since = old.Since
			if old.State != c.State {
				c.Since = now
			}
		} else {
			delete(t.held, ch)
			if x := it.Field("Exten"); c.Direction == Outgoing && x != "s" && x != "" {
				t.dialed[ch] = x
			}
		}
		t.party(c, it)
		t.chans[ch] = c
		if !known || !same(old, c) {
			changed = append(changed, c.copy())
		}
	}
	for ch, c := range t.chans {
		if !seen[ch] {
			t.forget(ch)
			ended = append(ended, c.copy())
		}
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].Channel < ended[j].Channel })
	return changed, ended
}

func same(a, b *Call) bool {
	if a.UniqueID != b.UniqueID || a.State != b.State || a.Number != b.Number || a.Name != b.Name || a.Direction != b.Direction || len(a.Vars) != len(b.Vars) {
		return false
	}
	for k, v := range a.Vars {
		if b.Vars[k] != v {
			return false
		}
	}
	return true
}

// duration reads CoreShowChannel's Duration, "HH:MM:SS" (0 when it
// cannot be read).
func duration(s string) time.Duration {
	p := strings.Split(s, ":")
	if len(p) != 3 {
		return 0
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		n, err := strconv.Atoi(p[i])
		if err != nil || n < 0 {
			return 0
		}
		d += time.Duration(n) * unit
	}
	return d
}

// Calls returns every call, by channel.
func (t *Tracker) Calls() []Call {
	out := make([]Call, 0, len(t.chans))
	for _, c := range t.chans {
		out = append(out, c.copy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// OfDevices returns the calls on the devices, by channel.
func (t *Tracker) OfDevices(devices []string) []Call {
	want := map[string]bool{}
	for _, d := range devices {
		want[d] = true
	}
	var out []Call
	for _, c := range t.Calls() {
		if want[c.Device] {
			out = append(out, c)
		}
	}
	return out
}
