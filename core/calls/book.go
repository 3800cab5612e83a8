package calls

import (
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/change"
)

// The kinds of change of calls (their numbers are in the change log:
// never reuse one).
const (
	KindCalls change.Kind = 4 // the calls on a device (DeviceCalls)
	KindPhone change.Kind = 6 // a call event a phone reported (PhoneEvent): an event, not a state
)

// Kinds are the codecs of the changes of calls.
func Kinds() []change.Codec {
	return []change.Codec{change.JSON[DeviceCalls](KindCalls, "calls"), change.JSON[PhoneEvent](KindPhone, "phone")}
}

// Book is the calls of one Asterisk, safe for concurrent use: the AMI
// feed writes it (it is an ami.CallSink), the API reads it.
type Book struct {
	// sink gets the calls now on each device an event or a list changed
	// (none: the last ended), after the book's lock is released; their
	// versions keep Asterisk's order.
	sink change.Sink
	site string

	mu      sync.Mutex
	t       *Tracker
	version uint64
}

// DeviceCalls is the calls on one device: what watchers are sent. A
// device, not a call, is the unit: there are as many as phones, whereas
// calls come and go by the thousand a day, and each would stay behind
// as a key of the change log.
type DeviceCalls struct {
	Device string `json:"device"`
	// Site, in a cluster of several sites, is the site whose Asterisk
	// has the device.
	Site  string `json:"site,omitempty"`
	Calls []Call `json:"calls"`
}

// Key is the device's name in the change log: "calls:" and the device,
// after its site in a cluster of sites.
func (d DeviceCalls) Key() string {
	if d.Site != "" {
		return d.Site + "/calls:" + d.Device
	}
	return "calls:" + d.Device
}

// NewBook returns an empty book; sink (nil: none) gets every change of
// the calls on a device (KindCalls), of site (PRESENCED_SITE; "" alone).
func NewBook(sink change.Sink, site string) *Book {
	if sink == nil {
		sink = change.Discard{}
	}
	return &Book{t: New(), sink: sink, site: site}
}

// CallEvent applies one channel event.
func (b *Book) CallEvent(ev Fields, at time.Time) {
	b.mu.Lock()
	cs := b.changes(b.t.Event(ev, at))
	b.mu.Unlock()
	b.sink.Append(cs...)
}

// ResyncCalls replaces what is known with a CoreShowChannels list.
func (b *Book) ResyncCalls(items []Fields, at time.Time) {
	b.mu.Lock()
	cs := b.changes(b.t.Resync(items, at))
	b.mu.Unlock()
	b.sink.Append(cs...)
}

// changes are the calls now on each device the calls are on; b.mu is
// held.
func (b *Book) changes(changed, ended []Call) []change.Change {
	var out []change.Change
	seen := map[string]bool{}
	for _, c := range append(changed, ended...) {
		if seen[c.Device] {
			continue
		}
		seen[c.Device] = true
		cs := b.t.OfDevices([]string{c.Device})
		if cs == nil {
			cs = []Call{}
		}
		d := DeviceCalls{Device: c.Device, Site: b.site, Calls: cs}
		b.version++
		out = append(out, change.Change{Kind: KindCalls, Key: d.Key(), Version: b.version, Value: d, Source: "calls"})
	}
	return out
}

// All returns every call, by channel.
func (b *Book) All() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.t.Calls()
}

// WithoutParty returns the call without who the other party is (number,
// name) and without its USR_* variables: what a token that may see
// states but not parties gets.
func (c Call) WithoutParty() Call {
	c.Number, c.Name, c.Vars = "", "", nil
	return c
}

// WithoutParties returns d with every call WithoutParty.
func (d DeviceCalls) WithoutParties() DeviceCalls {
	cs := make([]Call, len(d.Calls))
	for i, c := range d.Calls {
		cs[i] = c.WithoutParty()
	}
	d.Calls = cs
	return d
}
