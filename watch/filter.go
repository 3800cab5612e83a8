package watch

import (
	"strings"

	"github.com/presenced/presenced/calls"
	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/voicemail"
)

// Filter selects what a subscriber gets: everything, or some hints and
// some presence providers.
type Filter struct {
	All       bool
	Hints     []string // "1001@internal", or "1001" for 1001@default
	Providers []string // "CustomPresence:1001"
	// Devices are devices whose calls the filter selects ("PJSIP/1001",
	// at the watcher's site), besides the devices its hints have when
	// it subscribes; Mailboxes are voicemail boxes ("1001@default").
	Devices   []string
	Mailboxes []string
}

type matcher struct {
	all       bool
	hints     map[string]bool
	providers map[string]bool
	// users are the users whose call forwards the filter selects: those
	// of its CustomPresence providers and of its hints' extensions.
	users map[string]bool
	// devices (calls keys, calls.DeviceCalls.Key) and mailboxes
	// (voicemail.Count.Key) selected.
	devices, mailboxes map[string]bool
	// site is the watcher's (its users' phones are there).
	site string
}

// compile makes the matcher; site, in a cluster of several sites, is the
// site of a hint reference that names none (the watcher's node's).
func (f Filter) compile(site string) matcher {
	m := matcher{all: f.All, hints: map[string]bool{}, providers: map[string]bool{}, users: map[string]bool{},
		devices: map[string]bool{}, mailboxes: map[string]bool{}, site: site}
	for _, d := range f.Devices {
		m.devices[calls.DeviceCalls{Device: d, Site: site}.Key()] = true
	}
	for _, b := range f.Mailboxes {
		if site != "" && !strings.Contains(b, "/") {
			b = site + "/" + b
		}
		m.mailboxes[b] = true
	}
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
	for k := range m.users {
		out = append(out, "f:"+k, "e:"+calls.PhoneEvent{User: k, Site: m.site}.Key())
	}
	for k := range m.devices {
		out = append(out, "c:"+k)
	}
	for k := range m.mailboxes {
		out = append(out, "m:"+k)
	}
	return out
}

// widen adds the devices the filter's hints have now (current: the hub's
// latest events by id), so that a watcher of a hint gets the calls on
// its phones; hub.mu is held, before the subscriber is registered.
func (m matcher) widen(current map[string]*Event) {
	for k := range m.hints {
		if ev, ok := current["h:"+k]; ok {
			for _, d := range ev.Hint.Devices {
				m.devices[calls.DeviceCalls{Device: d, Site: ev.Hint.Site}.Key()] = true
			}
		}
	}
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
	case KindPhone:
		// From the key alone, as webhooks match: [site/]phone:user.
		site, rest := "", it.Key
		if !strings.HasPrefix(rest, "phone:") {
			site, rest, _ = strings.Cut(rest, "/")
		}
		user, ok := strings.CutPrefix(rest, "phone:")
		return ok && m.users[user] && site == m.site
	case KindCalls:
		return m.devices[it.Key]
	case KindMailbox:
		return m.mailboxes[it.Key]
	}
	return false
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
	if !f.All && len(f.Hints) == 0 && len(f.Providers) == 0 && len(f.Devices) == 0 && len(f.Mailboxes) == 0 {
		return presence.Errorf(presence.CodeInvalidArgument, "say what to watch: hints (1001@internal), providers (CustomPresence:1001), devices (PJSIP/1001), mailboxes (1001@default) or all")
	}
	if len(f.Hints) > MaxFilterRefs || len(f.Providers) > MaxFilterRefs || len(f.Devices) > MaxFilterRefs || len(f.Mailboxes) > MaxFilterRefs {
		return presence.Errorf(presence.CodeInvalidArgument, "a filter names at most %d of each (hints, providers, devices, mailboxes); watch all instead", MaxFilterRefs)
	}
	for _, d := range f.Devices {
		if !validDevice(d) {
			return presence.Errorf(presence.CodeInvalidArgument, "%q is not a device such as PJSIP/1001", clip.Clip(d))
		}
	}
	for _, b := range f.Mailboxes {
		site, box := hints.SplitSite(b)
		if site != "" || box != b {
			if err := presence.ValidateSite(site); err != nil {
				return err
			}
		}
		if err := voicemail.ValidMailbox(box); err != nil {
			return presence.Errorf(presence.CodeInvalidArgument, "%v", err)
		}
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

// validDevice: "<technology>/<resource>", as Asterisk names devices,
// at most 80 printable bytes, none a separator of the lists that carry it.
func validDevice(d string) bool {
	tech, res, ok := strings.Cut(d, "/")
	if !ok || tech == "" || res == "" || len(d) > 80 {
		return false
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '&' {
			return false
		}
	}
	return true
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
