package watch

import (
	"strings"

	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/presence"
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
	// users are the users whose call forwards the filter selects: those
	// of its CustomPresence providers and of its hints' extensions.
	users map[string]bool
}

// compile makes the matcher; site, in a cluster of several sites, is the
// site of a hint reference that names none (the watcher's node's).
func (f Filter) compile(site string) matcher {
	m := matcher{all: f.All, hints: map[string]bool{}, providers: map[string]bool{}, users: map[string]bool{}}
	for _, h := range f.Hints {
		if !strings.Contains(h, "@") {
			h += "@" + hints.DefaultContext
		}
		exten, _, _ := strings.Cut(h[strings.LastIndex(h, "/")+1:], "@")
		m.users[exten] = true
		if site != "" && !strings.Contains(h, "/") {
			h = site + "/" + h
		}
		m.hints[h] = true
	}
	for _, p := range f.Providers {
		m.providers[hints.ProviderKey(p)] = true
		if user, err := presence.ParseProvider(p); err == nil {
			m.users[user] = true
		}
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
	switch it.Kind {
	case KindHint:
		return m.hints[it.Key]
	case KindPresence:
		return m.providers[it.Key]
	case KindForward:
		return m.users[it.Key]
	}
	return false // voicemail boxes and calls: watchers of everything only
}

// Matcher is a compiled Filter, for those who select items themselves (the
// webhook journal keeps every change and gives each subscription its own).
type Matcher struct{ m matcher }

// Compile returns f's matcher.
func (f Filter) Compile() Matcher { return Matcher{f.compile("")} }

// Match reports whether the filter selects an item of kind k and key.
func (m Matcher) Match(k Kind, key string) bool { return m.m.match(Item{Kind: k, Key: key}) }

// MaxFilterRefs is the most hints, and the most providers, one filter
// names: a watcher of more watches everything ("all"). It bounds what one
// stream or webhook costs (a filter of 100,000 names cost 10 MB a stream).
const MaxFilterRefs = 1000

// Check reports what is wrong with a filter: nothing selected, too many
// names, or a name that is not a hint reference ("1001@internal") or a
// provider ("CustomPresence:1001"). The error is a presence.Error with
// CodeInvalidArgument.
func (f Filter) Check() error {
	if !f.All && len(f.Hints) == 0 && len(f.Providers) == 0 {
		return presence.Errorf(presence.CodeInvalidArgument, "say what to watch: hints (1001@internal), providers (CustomPresence:1001) or all")
	}
	if len(f.Hints) > MaxFilterRefs || len(f.Providers) > MaxFilterRefs {
		return presence.Errorf(presence.CodeInvalidArgument, "a filter names at most %d hints and %d providers; watch all instead", MaxFilterRefs, MaxFilterRefs)
	}
	for _, h := range f.Hints {
		site, ref := hints.SplitSite(h)
		if site != "" || ref != h {
			if err := presence.ValidateSite(site); err != nil {
				return err
			}
		}
		if _, _, err := hints.ParseHintRef(ref); err != nil {
			return err
		}
	}
	for _, p := range f.Providers {
		if err := checkProvider(p); err != nil {
			return err
		}
	}
	return nil
}

// checkProvider: "<provider>:<name>", as Asterisk names presence providers
// (CustomPresence:1001); letters and digits before the colon, at most 80
// printable bytes after it, none of them a separator of the lists that
// carry them.
func checkProvider(p string) error {
	kind, name, ok := strings.Cut(p, ":")
	bad := !ok || kind == "" || name == "" || len(name) > 80
	for i := 0; !bad && i < len(kind); i++ {
		c := kind[i]
		bad = !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}
	for i := 0; !bad && i < len(name); i++ {
		c := name[i]
		bad = c <= ' ' || c >= 0x7f || c == ',' || c == '&'
	}
	if bad {
		return presence.Errorf(presence.CodeInvalidArgument, "%q is not a presence provider such as CustomPresence:1001", clip.Clip(p))
	}
	return nil
}
