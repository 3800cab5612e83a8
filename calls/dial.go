package calls

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNumber is the longest number click to dial takes.
const MaxNumber = 32

// ErrNumber is a number click to dial refuses.
var ErrNumber = errors.New("not a number to dial")

// ValidNumber checks a number to dial: an optional leading "+", then 1
// to 32 digits, "*" or "#". It becomes the Exten of an AMI Originate:
// nothing else may reach the dialplan (a "${...}" would be evaluated
// there, a "&" or "," would add targets or options to a Dial, a line
// break would end the AMI frame). Spaces, dots, dashes and brackets,
// which people write in numbers, are not taken out: the caller does that,
// and says so.
func ValidNumber(n string) error {
	digits := strings.TrimPrefix(n, "+")
	if digits == "" || len(n) > MaxNumber {
		return fmt.Errorf("%w: 1 to %d digits, * or #, after an optional +", ErrNumber, MaxNumber)
	}
	for _, r := range digits {
		if (r < '0' || r > '9') && r != '*' && r != '#' {
			return fmt.Errorf("%w: %q is not a digit, * or #", ErrNumber, r)
		}
	}
	return nil
}

// Dialable reports whether a hint's device can be rung by an Originate:
// a channel technology and a resource ("PJSIP/1001"), not a device
// presenced or the dialplan drives (Custom:1001, Stasis:...); a Local
// channel is fine.
func Dialable(device string) bool {
	tech, res, ok := strings.Cut(device, "/")
	return ok && tech != "" && res != "" && !strings.Contains(tech, ":") && !strings.ContainsAny(device, "\r\n&,")
}
