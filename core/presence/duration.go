package presence

import (
	"strconv"
	"time"

	"github.com/presenced/presenced/internal/clip"
)

// Bounds of the "for" argument of timed presence.
const (
	MinFor = time.Second
	MaxFor = 31 * 24 * time.Hour
)

// ParseFor parses the "for" argument: a Go duration ("90s", "30m", "1h30m")
// or a plain number of seconds, as Asterisk's own timeouts are given.
func ParseFor(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 32)
		if nerr != nil {
			return 0, Errorf(CodeInvalidArgument, "cannot read %q as a duration (like 90, 45s, 30m or 1h30m)", clip.Clip(s))
		}
		d = time.Duration(n) * time.Second
	}
	if d < MinFor || d > MaxFor {
		return 0, Errorf(CodeInvalidArgument, "duration %q is outside 1s to 31 days", clip.Clip(s))
	}
	return d, nil
}
