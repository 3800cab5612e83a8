package hints

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/presence"
)

// Hint is one hint's definition: `exten => EXTEN,hint,DEVICES,PROVIDERS`
// in CONTEXT.
type Hint struct {
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

// Key is "exten@context".
func (h Hint) Key() string { return h.Exten + "@" + h.Context }

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
	hint  Hint
	state State
}

// Table holds every hint with its current state. It is safe for
// concurrent use; changes are computed under its lock and returned, in the
// order they happened, to the caller, which hands them on (to the hub).
type Table struct {
	mu        sync.Mutex
	version   uint64
	hints     map[string]*entry           // by Key
	devices   map[string]DeviceState      // last known state of each device
	providers map[string]ProviderPresence // by provider key (technology lower-cased)
	byDevice  map[string]map[*entry]struct{}
	byProv    map[string]map[*entry]struct{}
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{
		hints: map[string]*entry{}, devices: map[string]DeviceState{}, providers: map[string]ProviderPresence{},
		byDevice: map[string]map[*entry]struct{}{}, byProv: map[string]map[*entry]struct{}{},
	}
}

// ProviderKey is the form in which provider names compare as Asterisk
// compares them: the technology ("CustomPresence") case-insensitively, the
// rest exactly.
func ProviderKey(p string) string {
	tech, rest, ok := strings.Cut(p, ":")
	if !ok {
		return p
	}
	return strings.ToLower(tech) + ":" + rest
}

// Put adds a hint or replaces the one with the same exten@context. The
// change is returned when the hint is new or its state differs.
func (t *Table) Put(h Hint) (State, bool) {
	h.Devices = slices.Clone(h.Devices)
	h.Providers = slices.Clone(h.Providers)
	t.mu.Lock()
	defer t.mu.Unlock()
	old, existed := t.hints[h.Key()]
	if existed {
		t.unindex(old)
	}
	e := &entry{hint: h}
	t.hints[h.Key()] = e
	for _, d := range h.Devices {
		addIndex(t.byDevice, d, e)
	}
	for _, p := range h.Providers {
		addIndex(t.byProv, ProviderKey(p), e)
	}
	e.state = t.compute(h)
	if existed && old.state.same(e.state) && slices.Equal(old.hint.Devices, h.Devices) && slices.Equal(old.hint.Providers, h.Providers) {
		e.state.Version = old.state.Version
		return e.state, false
	}
	t.version++
	e.state.Version = t.version
	return e.state, true
}

// Remove removes a hint; the returned state has Removed set.
func (t *Table) Remove(context, exten string) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := exten + "@" + context
	e, ok := t.hints[key]
	if !ok {
		return State{}, false
	}
	t.unindex(e)
	delete(t.hints, key)
	s := e.state
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
	defer t.mu.Unlock()
	if old, ok := t.devices[name]; ok && old == s {
		return nil
	}
	t.devices[name] = s
	return t.recompute(t.byDevice[name])
}

// SetPresence records a provider's presence and returns the states of the
// hints it changed.
func (t *Table) SetPresence(provider string, p ProviderPresence) []State {
	p.Value.Expires = time.Time{} // presenced's own bookkeeping; Asterisk has no expiry
	t.mu.Lock()
	defer t.mu.Unlock()
	key := ProviderKey(provider)
	if old, ok := t.providers[key]; ok && old.Invalid == p.Invalid && old.Value.Same(p.Value) {
		return nil
	}
	t.providers[key] = p
	return t.recompute(t.byProv[key])
}

// Get returns one hint's state.
func (t *Table) Get(context, exten string) (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.hints[exten+"@"+context]
	if !ok {
		return State{}, false
	}
	return e.state, true
}

// Snapshot returns every hint's state, ordered by context then extension.
func (t *Table) Snapshot() []State {
	t.mu.Lock()
	out := make([]State, 0, len(t.hints))
	for _, e := range t.hints {
		out = append(out, e.state)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b State) int {
		if c := strings.Compare(a.Context, b.Context); c != 0 {
			return c
		}
		return strings.Compare(a.Exten, b.Exten)
	})
	return out
}

// Len returns the number of hints.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.hints)
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
		if !s.same(e.state) {
			t.version++
			s.Version = t.version
			e.state = s
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
