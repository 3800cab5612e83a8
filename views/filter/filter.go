// Package filter reads what a watcher asks to watch (hints, presence
// providers, devices, mailboxes, or all) and turns it into the hub's
// filter of change keys: the views (SSE, WebSocket, webhooks) share it.
package filter

import (
	"strings"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/clip"
)

// Spec is what a watcher asks for: everything, or some hints and some
// presence providers, devices and mailboxes.
type Spec struct {
	All       bool
	Hints     []string // "1001@internal", or "1001" for 1001@default
	Providers []string // "CustomPresence:1001"
	// Devices are devices whose calls the filter selects ("PJSIP/1001",
	// at the watcher's site), besides the devices its hints have when
	// it subscribes; Mailboxes are voicemail boxes ("1001@default").
	Devices   []string
	Mailboxes []string
}

// Watch returns the hub's filter for s; site, in a cluster of several
// sites, is the site of a reference that names none (the watcher's
// node's). It selects: the hints and providers named; the call forwards
// and phone events of their users (the providers' and the hints'
// extensions); the calls on the devices named and, when the watcher
// subscribes, on the devices its hints have; the mailboxes named.
func (s Spec) Watch(site string) watch.Filter {
	if s.All {
		return watch.Filter{All: true}
	}
	var ids []change.ID
	users := map[string]bool{}
	var hintKeys []string
	for _, d := range s.Devices {
		ids = append(ids, change.ID{Kind: calls.KindCalls, Key: calls.DeviceCalls{Device: d, Site: site}.Key()})
	}
	for _, b := range s.Mailboxes {
		if site != "" && !strings.Contains(b, "/") {
			b = site + "/" + b
		}
		ids = append(ids, change.ID{Kind: voicemail.Kind, Key: b})
	}
	for _, h := range s.Hints {
		if !strings.Contains(h, "@") {
			h += "@" + hints.DefaultContext
		}
		exten, _, _ := strings.Cut(h[strings.LastIndex(h, "/")+1:], "@")
		users[exten] = true
		if site != "" && !strings.Contains(h, "/") {
			h = site + "/" + h
		}
		hintKeys = append(hintKeys, h)
		ids = append(ids, change.ID{Kind: hints.KindHint, Key: h})
	}
	for _, p := range s.Providers {
		ids = append(ids, change.ID{Kind: hints.KindPresence, Key: hints.ProviderKey(p)})
		if user, err := presence.ParseProvider(p); err == nil {
			users[user] = true
		}
	}
	for u := range users {
		ids = append(ids, change.ID{Kind: forward.ChangeKind, Key: u},
			change.ID{Kind: calls.KindPhone, Key: calls.PhoneEvent{User: u, Site: site}.Key()})
	}
	f := watch.Filter{IDs: ids}
	if len(hintKeys) > 0 {
		// A watcher of a hint gets the calls on its phones: the devices
		// the hint has when the watcher subscribes.
		f.Widen = func(current func(change.ID) (change.Change, bool)) []change.ID {
			var more []change.ID
			for _, k := range hintKeys {
				if c, ok := current(change.ID{Kind: hints.KindHint, Key: k}); ok {
					if st, ok := c.Value.(hints.State); ok {
						for _, d := range st.Devices {
							more = append(more, change.ID{Kind: calls.KindCalls, Key: calls.DeviceCalls{Device: d, Site: st.Site}.Key()})
						}
					}
				}
			}
			return more
		}
	}
	return f
}

// MaxRefs is the most hints, and the most providers, one filter
// names: a watcher of more watches everything ("all"). It bounds what one
// stream or webhook costs (a filter of 100,000 names cost 10 MB a stream).
const MaxRefs = 1000

// Check reports what is wrong with a filter: nothing selected, too many
// names, or a name that is not a hint reference ("1001@internal") or a
// provider ("CustomPresence:1001"). The error is a presence.Error with
// CodeInvalidArgument.
func (f Spec) Check() error {
	if !f.All && len(f.Hints) == 0 && len(f.Providers) == 0 && len(f.Devices) == 0 && len(f.Mailboxes) == 0 {
		return presence.Errorf(presence.CodeInvalidArgument, "say what to watch: hints (1001@internal), providers (CustomPresence:1001), devices (PJSIP/1001), mailboxes (1001@default) or all")
	}
	if len(f.Hints) > MaxRefs || len(f.Providers) > MaxRefs || len(f.Devices) > MaxRefs || len(f.Mailboxes) > MaxRefs {
		return presence.Errorf(presence.CodeInvalidArgument, "a filter names at most %d of each (hints, providers, devices, mailboxes); watch all instead", MaxRefs)
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

// Kinds are the codecs of every kind of change a watcher can select,
// which the change log holds (watch.Config.Kinds).
func Kinds() change.Kinds {
	ks, err := change.NewKinds(hints.Kinds(), calls.Kinds(), voicemail.Kinds(), forward.Kinds())
	if err != nil {
		panic(err) // two kinds of one number: a mistake of this list, caught by every test
	}
	return ks
}
