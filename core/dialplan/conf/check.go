package conf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/presenced/presenced/core/presence"
)

// Check reports what makes hints useless to presenced although Asterisk
// accepts them: a device with no technology ("1001" instead of
// "PJSIP/1001"), a presence provider that is not CustomPresence: (presenced
// can neither set nor watch it), pattern hints (not hints of their own),
// and a user's hint without the user's DND device (ordinary phones' BLF
// keys see device states only: without it they never show DND).
func Check(dp Dialplan) []Problem {
	var out []Problem
	for _, h := range dp.Hints {
		p := func(isErr bool, format string, args ...any) {
			out = append(out, Problem{File: h.File, Line: h.Line, Error: isErr, Msg: h.Key() + ": " + fmt.Sprintf(format, args...)})
		}
		if h.Pattern {
			p(false, "a hint on a pattern extension: Asterisk makes hints of it only for extensions dialled through it; presenced does not track it")
		}
		for _, d := range h.Devices {
			if !strings.ContainsAny(d, "/:") {
				p(true, "device %q has no technology (like PJSIP/%s)", d, d)
			}
		}
		for _, pr := range h.Providers {
			if len(pr) < 15 || !strings.EqualFold(pr[:15], "CustomPresence:") {
				p(false, "presence provider %q is not a CustomPresence: provider; presenced can neither set nor watch it", pr)
				continue
			}
			user, err := presence.ParseProvider(pr)
			if err != nil {
				continue
			}
			// Another site's user (cross-site BLF): the device that shows
			// their line shows their DND with it.
			remote := slices.ContainsFunc(h.Devices, func(d string) bool { return strings.HasPrefix(d, "Stasis:presenced-remote-") })
			if dnd := presence.DNDDevice(user); !remote && !slices.ContainsFunc(h.Devices, func(d string) bool { return strings.EqualFold(d, dnd) }) {
				p(false, "shows %s's presence but not their DND device: ordinary phones' BLF keys stay dark while %s is on DND (add &%s to the devices; presenced dialplan hints writes it)", user, user, dnd)
			}
		}
		if len(h.Devices) == 0 && len(h.Providers) == 0 {
			p(true, "a hint with neither devices nor presence")
		}
	}
	return out
}
