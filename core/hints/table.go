package hints

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/core/presence"
)

// Hint is one hint's definition: `exten => EXTEN,hint,DEVICES,PROVIDERS`
// in CONTEXT.
type Hint struct {
	// Site is set on hints a cluster of several sites shows (the node's
	// own table leaves it empty): the site whose Asterisk has the hint.
	Site      string   `json:"site,omitempty"`
	Context   string   `json:"context"`
	Exten     string   `json:"exten"`
	Devices   []string `json:"devices"`   // device names, "&"-separated in the dialplan
	Providers []string `json:"providers"` // presence providers, "&"-separated after the first ","
}

// ParseHintApp splits a hint's application data as Asterisk does: devices
// before the first ",", "&"-separated (empty names skipped, repeats kept
// once); presence providers after it, "&"-separated.
func ParseHintApp(app string) (devices, providers []string) {
	devs, provs, _ := strings.Cut(app, ",")
	for _, d := range strings.Split(devs, "&") {
		if d != "" && !slices.Contains(devices, d) {
			devices = append(devices, d)
		}
	}
	for _, p := range strings.Split(provs, "&") {
		if p != "" {
			providers = append(providers, p)
		}
	}
	return devices, providers
}

// App renders the hint's application data ("PJSIP/1001&PJSIP/1001b,CustomPresence:1001").
func (h Hint) App() string {
	s := strings.Join(h.Devices, "&")
	if len(h.Providers) > 0 {
		s += "," + strings.Join(h.Providers, "&")
	}
	return s
}

// Key is "exten@context", or "site/exten@context" for a site's.
func (h Hint) Key() string {
	if h.Site != "" {
		return h.Site + "/" + h.Exten + "@" + h.Context
	}
	return h.Exten + "@" + h.Context
}

// State is a hint's whole state.
type State struct {
	Hint
	// Extension is the hint state Asterisk shows (core show hints "State:").
	Extension ExtensionState `json:"state"`
	// Device is the aggregate of the devices' states.
	Device DeviceState `json:"device_state"`
	// Presence is the combined presence of the providers; Expires is never set.
	Presence        presence.Value `json:"presence"`
	PresenceInvalid bool           `json:"presence_invalid,omitempty"`
	// Removed is set on the change that removes the hint.
	Removed bool `json:"removed,omitempty"`
	// Version increases with every change the table makes to any hint, so
	// that changes published from several goroutines can be put in order.
	Version uint64 `json:"-"`
}

// same reports whether two states of a hint show the same.
func (s State) same(o State) bool {
	return s.Extension == o.Extension && s.Device == o.Device && s.Presence.Same(o.Presence) &&
		s.PresenceInvalid == o.PresenceInvalid && s.Removed == o.Removed
}

type entry struct {
	hint Hint
	// state is replaced, never changed in place: a snapshot hands out the
	// pointer.
	state *State
	// held: the hint's devices were replaced (a dialplan reload) and, as
	// in Asterisk, its device and extension state stay as they were until
	// one of its devices changes (BEHAVIOUR.md 4.13).
	held bool
}

// Table holds every hint with its current state and every provider's
// presence: it is the one place where "is this a change" is decided. Every
// source feeds it (device states, presence from presenced's own writes
// and from Asterisk, hint sets from AMI and extensions.conf); only what
// really changed goes to the Sink, and is returned to the caller.
type Table struct {
	// Sink, when set before the table is used, gets every change: a
	// hint's whole state (KindHint), or a provider's presence
	// (KindPresence). It is called outside the table's lock, so changes
	// from different goroutines may arrive out of order: Version tells
	// which of two changes of one hint or provider is newer.
	Sink change.Sink
	// Site, in a cluster of several sites, is this table's: the hints it
	// publishes say it (State.Site), and their keys start with it.
	Site string

	mu        sync.Mutex
	version   uint64
	hints     map[string]*entry           // by Key
	sorted    []*entry                    // by context, then extension: Snapshot's order, kept as hints come and go
	devices   map[string]DeviceState      // last known state of each device
	providers map[string]ProviderPresence // by ProviderKey
	provSeq   map[string]uint64           // by ProviderKey: the source's order of the presence held
	byDevice  map[string]map[*entry]struct{}
	byProv    map[string]map[*entry]struct{}
	// devChanged is closed (and replaced) when the set of devices some
	// hint uses changes.
	devChanged chan struct{}
}

// DevicesChanged returns a channel closed when the set of devices some
// hint uses next changes (a device feed then follows the new ones).
func (t *Table) DevicesChanged() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.devChanged
}

// devicesChanged announces a change of the device set; t.mu is held.
func (t *Table) devicesChanged() {
	close(t.devChanged)
	t.devChanged = make(chan struct{})
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{
		hints: map[string]*entry{}, devices: map[string]DeviceState{}, providers: map[string]ProviderPresence{},
		provSeq:  map[string]uint64{},
		byDevice: map[string]map[*entry]struct{}{}, byProv: map[string]map[*entry]struct{}{},
		devChanged: make(chan struct{}),
	}
}

// ProviderKey is the one spelling of a provider presenced shows:
// "CustomPresence:1001" as in hints, whatever the case it was given in
// ("custompresence:1001"), since Asterisk matches the technology
// case-insensitively and the name exactly. Other technologies (which
// presenced cannot evaluate) are lower-cased.
func ProviderKey(p string) string {
	tech, rest, ok := strings.Cut(p, ":")
	if !ok {
		return p
	}
	if strings.EqualFold(tech, "CustomPresence") {
		return "CustomPresence:" + rest
	}
	return strings.ToLower(tech) + ":" + rest
}

// publish hands changes to the sink; t.mu is not held.
func (t *Table) publish(hs []State, provs ...change.Change) {
	if t.Sink == nil || len(hs)+len(provs) == 0 {
		return
	}
	out := make([]change.Change, 0, len(hs)+len(provs))
	out = append(out, provs...)
	for _, st := range hs {
		st.Site = t.Site
		out = append(out, change.Change{Kind: KindHint, Key: st.Key(), Version: st.Version, Value: st, Source: "hints"})
	}
	t.Sink.Append(out...)
}

// Put adds a hint or replaces the one with the same exten@context. The
// change is returned when the hint is new or its state differs.
func (t *Table) Put(h Hint) (State, bool) {
	st, ok := t.put(h)
	if ok {
		t.publish([]State{st})
	}
	return st, ok
}

func (t *Table) put(h Hint) (State, bool) {
	// Copied, and never nil: a hint without providers shows
	// "providers":[], as the API's schema says.
	h.Devices = append([]string{}, h.Devices...)
	h.Providers = append([]string{}, h.Providers...)
	t.mu.Lock()
	defer t.mu.Unlock()
	old, existed := t.hints[h.Key()]
	if existed {
		t.unindex(old)
	}
	e := &entry{hint: h}
	t.hints[h.Key()] = e
	i, found := t.position(h.Context, h.Exten)
	if found {
		t.sorted[i] = e
	} else {
		t.sorted = slices.Insert(t.sorted, i, e)
	}
	devs := len(t.byDevice)
	for _, d := range h.Devices {
		addIndex(t.byDevice, d, e)
	}
	if len(t.byDevice) != devs || existed && !slices.Equal(old.hint.Devices, h.Devices) {
		t.devicesChanged()
	}
	for _, p := range h.Providers {
		addIndex(t.byProv, ProviderKey(p), e)
	}
	st := t.compute(h)
	if existed && (old.held || !slices.Equal(old.hint.Devices, h.Devices)) {
		// Asterisk replaces the devices but does not recompute the state
		// until one of them changes.
		st.Device, st.Extension, e.held = old.state.Device, old.state.Extension, true
	}
	if existed && old.state.same(st) && slices.Equal(old.hint.Devices, h.Devices) && slices.Equal(old.hint.Providers, h.Providers) {
		st.Version = old.state.Version
		e.state = &st
		return st, false
	}
	t.version++
	st.Version = t.version
	e.state = &st
	return st, true
}

// Remove removes a hint; the returned state has Removed set.
func (t *Table) Remove(context, exten string) (State, bool) {
	st, ok := t.remove(context, exten)
	if ok {
		t.publish([]State{st})
	}
	return st, ok
}

func (t *Table) remove(context, exten string) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := exten + "@" + context
	e, ok := t.hints[key]
	if !ok {
		return State{}, false
	}
	devs := len(t.byDevice)
	t.unindex(e)
	delete(t.hints, key)
	if i, found := t.position(context, exten); found {
		t.sorted = slices.Delete(t.sorted, i, i+1)
	}
	if len(t.byDevice) != devs {
		t.devicesChanged()
	}
	s := *e.state
	s.Removed = true
	s.Extension = ExtRemoved
	t.version++
	s.Version = t.version
	return s, true
}

// SetDevice records a device's state and returns the states of the hints
// it changed.
func (t *Table) SetDevice(name string, s DeviceState) []State {
	t.mu.Lock()
	old, ok := t.devices[name]
	if ok && old == s {
		t.mu.Unlock()
		return nil
	}
	t.devices[name] = s
	for e := range t.byDevice[name] {
		e.held = false // a device changed: Asterisk recomputes the hint
	}
	out := t.recompute(t.byDevice[name])
	t.mu.Unlock()
	t.publish(out)
	return out
}

// SetPresence records a provider's presence and returns the states of the
// hints it changed; the provider's own change goes to the sink with them.
func (t *Table) SetPresence(provider string, p ProviderPresence) []State {
	return t.setPresence(provider, p, 0, 0)
}

// setPresence is SetPresence for a source that numbers its changes of a
// provider (the presence service): a change numbered below the one the
// table holds is older and changes nothing (0 is not numbered). rev is
// the cluster's revision of the record the presence shows (change.Rev;
// 0: none).
func (t *Table) setPresence(provider string, p ProviderPresence, seq, rev uint64) []State {
	t.mu.Lock()
	out, prov, ok := t.setPresenceLocked(provider, p, seq, rev)
	t.mu.Unlock()
	if ok {
		t.publish(out, prov)
	}
	return out
}

// setPresenceLocked is setPresence under t.mu: the hints it changed and
// the provider's change, if any (ok).
func (t *Table) setPresenceLocked(provider string, p ProviderPresence, seq, rev uint64) (out []State, prov change.Change, ok bool) {
	// A provider's presence keeps when it ends (presenced's own timers;
	// Asterisk has no expiry), for watchers; a hint's combined presence
	// does not (recompute).
	key := ProviderKey(provider)
	if seq != 0 {
		if seq < t.provSeq[key] {
			return nil, prov, false
		}
		t.provSeq[key] = seq
	}
	if old, ok := t.providers[key]; ok && old.Invalid == p.Invalid && old.Value.Same(p.Value) && old.Value.Expires.Equal(p.Value.Expires) {
		return nil, prov, false
	}
	t.providers[key] = p
	t.version++
	prov = change.Change{Kind: KindPresence, Key: key, Version: t.version, Rev: rev, Value: p, Source: "hints"}
	return t.recompute(t.byProv[key]), prov, true
}

var (
	_ presence.Listener   = (*Table)(nil)
	_ presence.ListenerOf = (*Table)(nil)
)

// PresenceChanged takes a change the presence service reports
// (presence.Listener), ordered by its Seq.
func (t *Table) PresenceChanged(c presence.Change) {
	t.setPresence(c.Provider, ProviderPresence{Value: c.Value, Invalid: c.Invalid}, c.Seq, c.Rev)
}

// PresenceChangedAll takes many changes at once (every user's presence
// at start): one lock, and one append to the sink.
func (t *Table) PresenceChangedAll(cs []presence.Change) {
	var hs []State
	provs := make([]change.Change, 0, len(cs))
	t.mu.Lock()
	if len(t.providers) == 0 {
		// Sized once for every user (a start announces them all).
		t.providers, t.provSeq = make(map[string]ProviderPresence, len(cs)), make(map[string]uint64, len(cs))
	}
	for _, c := range cs {
		if out, prov, ok := t.setPresenceLocked(c.Provider, ProviderPresence{Value: c.Value, Invalid: c.Invalid}, c.Seq, c.Rev); ok {
			hs = append(hs, out...)
			provs = append(provs, prov)
		}
	}
	t.mu.Unlock()
	t.publish(hs, provs...)
}

// ReplaceHints makes the table hold exactly hs (the running dialplan's, or
// extensions.conf's): new and changed hints are put, those not in hs
// removed, and every change published.
func (t *Table) ReplaceHints(hs []Hint) (changed, removed int) {
	keep := make(map[string]bool, len(hs))
	var changes []State
	for _, h := range hs {
		keep[h.Key()] = true
		if st, ok := t.put(h); ok {
			changes = append(changes, st)
		}
	}
	changed = len(changes)
	t.mu.Lock()
	var drop []Hint
	for _, e := range t.sorted {
		if !keep[e.hint.Key()] {
			drop = append(drop, e.hint)
		}
	}
	t.mu.Unlock()
	for _, h := range drop {
		if gone, ok := t.remove(h.Context, h.Exten); ok {
			changes = append(changes, gone)
			removed++
		}
	}
	t.publish(changes)
	return changed, removed
}

// DNDUsers returns the users whose DND device (presence.DNDDevice) some
// hint shows: those whose BLF keys must follow their DND.
func (t *Table) DNDUsers() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for d := range t.byDevice {
		if user, ok := strings.CutPrefix(d, presence.DNDDevice("")); ok && presence.ValidateUser(user) == nil {
			out = append(out, user)
		}
	}
	slices.Sort(out)
	return out
}

// Get returns one hint's state.
func (t *Table) Get(context, exten string) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.hints[exten+"@"+context]
	if !ok {
		return State{}, false
	}
	return *e.state, true
}

// Snapshot returns every hint's state, ordered by context then extension.
// The states are shared: they must not be modified.
func (t *Table) Snapshot() []*State {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*State, len(t.sorted))
	for i, e := range t.sorted {
		out[i] = e.state
	}
	return out
}

// position finds a hint in t.sorted; t.mu is held.
func (t *Table) position(context, exten string) (int, bool) {
	return slices.BinarySearchFunc(t.sorted, [2]string{context, exten}, func(e *entry, k [2]string) int {
		if c := strings.Compare(e.hint.Context, k[0]); c != 0 {
			return c
		}
		return strings.Compare(e.hint.Exten, k[1])
	})
}

// Len returns the number of hints.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.hints)
}

// UsesDevice reports whether some hint uses the device.
func (t *Table) UsesDevice(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byDevice[name]) > 0
}

// Devices returns the names of every device some hint uses.
func (t *Table) Devices() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.byDevice))
	for d := range t.byDevice {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func (t *Table) recompute(es map[*entry]struct{}) []State {
	var out []State
	for e := range es {
		s := t.compute(e.hint)
		if e.held {
			s.Device, s.Extension = e.state.Device, e.state.Extension
		}
		if !s.same(*e.state) {
			t.version++
			s.Version = t.version
			e.state = &s
			out = append(out, s)
		}
	}
	return out
}

// compute is extension_state_update_sources: devices aggregated (no device
// at all: Unavailable), presence combined over the providers.
func (t *Table) compute(h Hint) State {
	s := State{Hint: h}
	if len(h.Devices) == 0 {
		s.Device = Invalid
		s.Extension = ExtUnavailable
	} else {
		agg := NewAggregate()
		for _, d := range h.Devices {
			agg.Add(t.devices[d]) // never reported: Unknown
		}
		s.Device = agg.Result()
		s.Extension = ExtensionStateOf(s.Device)
	}
	var buf [4]ProviderPresence
	ps := buf[:0]
	for _, p := range h.Providers {
		ps = append(ps, t.providers[ProviderKey(p)]) // never reported: not_set
	}
	c := CombinePresence(ps)
	s.Presence, s.PresenceInvalid = c.Value, c.Invalid
	s.Presence.Expires = time.Time{}
	return s
}

func (t *Table) unindex(e *entry) {
	for _, d := range e.hint.Devices {
		delIndex(t.byDevice, d, e)
	}
	for _, p := range e.hint.Providers {
		delIndex(t.byProv, ProviderKey(p), e)
	}
}

func addIndex(m map[string]map[*entry]struct{}, k string, e *entry) {
	set, ok := m[k]
	if !ok {
		set = map[*entry]struct{}{}
		m[k] = set
	}
	set[e] = struct{}{}
}

func delIndex(m map[string]map[*entry]struct{}, k string, e *entry) {
	if set, ok := m[k]; ok {
		delete(set, e)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}
