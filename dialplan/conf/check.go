package conf

import (
	"fmt"
	"strings"
)

// Check reports what makes hints useless to presenced although Asterisk
// accepts them: a device with no technology ("1001" instead of
// "PJSIP/1001"), a presence provider that is not CustomPresence: (presenced
// can neither set nor watch it), and pattern hints (not hints of their own).
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
			}
		}
		if len(h.Devices) == 0 && len(h.Providers) == 0 {
			p(true, "a hint with neither devices nor presence")
		}
	}
	return out
}
