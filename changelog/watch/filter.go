package watch

import "github.com/presenced/presenced/changelog/change"

// Filter selects what a subscriber gets: every change, or the changes of
// some keys (filter.Spec makes it from hint references, providers,
// devices and mailboxes).
type Filter struct {
	All bool
	IDs []change.ID
	// Widen, when set, adds keys from what the hub holds when the
	// subscription starts (current gives a key's latest change). It runs
	// under the hub's lock, atomically with the snapshot: it must not call
	// the hub.
	Widen func(current func(change.ID) (change.Change, bool)) []change.ID
}

type matcher struct {
	all   bool
	ids   map[string]bool // by idOf
	widen func(current func(change.ID) (change.Change, bool)) []change.ID
}

func (f Filter) compile() matcher {
	m := matcher{all: f.All, ids: make(map[string]bool, len(f.IDs)), widen: f.Widen}
	for _, id := range f.IDs {
		m.ids[id.String()] = true
	}
	return m
}

// keys lists the ids the matcher selects.
func (m matcher) keys() []string {
	out := make([]string, 0, len(m.ids))
	for k := range m.ids {
		out = append(out, k)
	}
	return out
}

// widenFrom adds the keys Filter.Widen finds in current (the hub's latest
// events by id); hub.mu is held, before the subscriber is registered.
func (m matcher) widenFrom(current map[string]*Event) {
	if m.widen == nil || m.all {
		return
	}
	for _, id := range m.widen(func(id change.ID) (change.Change, bool) {
		ev, ok := current[id.String()]
		if !ok {
			return change.Change{}, false
		}
		return ev.Change, true
	}) {
		m.ids[id.String()] = true
	}
}

func (m matcher) match(c change.Change) bool { return m.all || m.ids[idOf(c)] }

// Matcher is a compiled Filter, for those who select changes themselves
// (the webhook journal keeps every change and gives each subscription its
// own); a Filter's Widen does not apply.
type Matcher struct{ m matcher }

// Compile returns f's matcher.
func (f Filter) Compile() Matcher { return Matcher{f.compile()} }

// Match reports whether the filter selects the change of kind k and key.
func (m Matcher) Match(k change.Kind, key string) bool {
	return m.m.match(change.Change{Kind: k, Key: key})
}
