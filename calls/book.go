package calls

import (
	"sync"
	"time"
)

// Book is the calls of one Asterisk, safe for concurrent use: the AMI
// feed writes it (it is an ami.CallSink), the API reads it.
type Book struct {
	mu sync.Mutex
	t  *Tracker
	// onDevice is called with the calls now on each device an event or a
	// list changed (none: the last ended), under the book's lock, so in
	// Asterisk's order.
	onDevice func(DeviceCalls)
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

// NewBook returns an empty book; onDevice (nil: none) hears every change.
func NewBook(onDevice func(DeviceCalls)) *Book {
	return &Book{t: New(), onDevice: onDevice}
}

// CallEvent applies one channel event.
func (b *Book) CallEvent(ev Fields, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tell(b.t.Event(ev, at))
}

// ResyncCalls replaces what is known with a CoreShowChannels list.
func (b *Book) ResyncCalls(items []Fields, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tell(b.t.Resync(items, at))
}

// tell calls onDevice for each device the calls are on.
func (b *Book) tell(changed, ended []Call) {
	if b.onDevice == nil {
		return
	}
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
		b.onDevice(DeviceCalls{Device: c.Device, Calls: cs})
	}
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
