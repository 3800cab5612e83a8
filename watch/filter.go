package watch

import (
	"strings"

	"github.com/presenced/presenced/hints"
)

// Filter selects what a subscriber gets: everything, or some hints and
// some presence providers.
type Filter struct {
	All       bool
	Hints     []string // "1001@internal", or "1001" for 1001@default
	Providers []string // "CustomPresence:1001"
}

type matcher struct {
	all       bool
	hints     map[string]bool
	providers map[string]bool
}

func (f Filter) compile() matcher {
	m := matcher{all: f.All, hints: map[string]bool{}, providers: map[string]bool{}}
	for _, h := range f.Hints {
		if !strings.Contains(h, "@") {
			h += "@" + hints.DefaultContext
		}
		m.hints[h] = true
	}
	for _, p := range f.Providers {
		m.providers[hints.ProviderKey(p)] = true
	}
	return m
}

// ids lists the item ids a filter of hints and providers selects.
func (m matcher) ids() []string {
	out := make([]string, 0, len(m.hints)+len(m.providers))
	for k := range m.hints {
		out = append(out, "h:"+k)
	}
	for k := range m.providers {
		out = append(out, "p:"+k)
	}
	return out
}

func (m matcher) match(it Item) bool {
	if m.all {
		return true
	}
	if it.Kind == KindHint {
		return m.hints[it.Key]
	}
	return m.providers[it.Key]
}

// Matcher is a compiled Filter, for those who select items themselves (the
// webhook journal keeps every change and gives each subscription its own).
type Matcher struct{ m matcher }

// Compile returns f's matcher.
func (f Filter) Compile() Matcher { return Matcher{f.compile()} }

// Match reports whether the filter selects an item of kind k and key.
func (m Matcher) Match(k Kind, key string) bool { return m.m.match(Item{Kind: k, Key: key}) }
