package calls

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/internal/ratelimit"
)

// MaxNumber is the longest number click to dial takes.
const MaxNumber = 32

// ErrNumber is a number click to dial refuses.
var ErrNumber = errors.New("not a number to dial")

// ValidNumber checks that a string is a number at all: an optional leading "+", then 1
// to 32 digits, "*" or "#". It becomes the Exten of an AMI Originate:
// nothing else may reach the dialplan (a "${...}" would be evaluated
// there, a "&" or "," would add targets or options to a Dial, a line
// break would end the AMI frame). Spaces, dots, dashes and brackets,
// which people write in numbers, are not taken out: the caller does that,
// and says so. Which numbers may be dialled is the Policy's.
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

// Originator places a call: rings device, and when it answers dials
// number in dialContext (ami.Writer's AMI Originate); and hangs a channel
// up (AMI Hangup).
type Originator interface {
	Originate(ctx context.Context, device, dialContext, number string) error
	Hangup(ctx context.Context, channel string) error
}

// The limits of click to dial: a user's phone is rung at most dialBurst
// times at once, then once every dialEvery; a token or login ten times
// that (ratelimit.Pair).
const (
	dialEvery = 3 * time.Second
	dialBurst = 10
)

// Dialer is click to dial for every way in (REST, WebSocket, xuc): the
// policy, the limits per user and per token, and the audit line are
// here, once, so that no door can skip them. The door puts who asks in
// the context (actor.With).
type Dialer struct {
	policy  *Policy
	out     Originator
	context string
	limits  *ratelimit.Pair
	log     zerolog.Logger
}

// NewDialer returns a Dialer placing calls through out into dialContext
// (PRESENCED_DIAL_CONTEXT); a nil policy is DefaultPolicy. log gets the
// audit line of every dial, allowed or not.
func NewDialer(policy *Policy, out Originator, dialContext string, log zerolog.Logger) *Dialer {
	if policy == nil {
		policy = DefaultPolicy()
	}
	return &Dialer{policy: policy, out: out, context: dialContext, log: log, limits: ratelimit.NewPair(dialEvery, dialBurst)}
}

// Dial rings user's device and then dials number, when the policy and
// the limits allow it.
func (d *Dialer) Dial(ctx context.Context, user, device, number string) error {
	a := actor.From(ctx)
	err := d.dial(ctx, a, user, device, number)
	d.log.Info().Str("door", a.Door).Str("actor", a.Name).Str("remote", a.Remote).Str("user", user).
		Str("number", clip.Clip(number)).Str("device", device).Str("result", presence.Result(err)).Msg("dial")
	return err
}

// Hangup hangs a channel up, with the audit line of every door.
func (d *Dialer) Hangup(ctx context.Context, channel string) error {
	a := actor.From(ctx)
	err := d.out.Hangup(ctx, channel)
	d.log.Info().Str("door", a.Door).Str("actor", a.Name).Str("remote", a.Remote).Str("channel", clip.Clip(channel)).
		Str("result", presence.Result(err)).Msg("hangup")
	return err
}

func (d *Dialer) dial(ctx context.Context, a actor.Actor, user, device, number string) error {
	if err := d.policy.Refuse("number", number); err != nil {
		return err
	}
	if err := d.limits.Check(a.String(), user, "dials"); err != nil {
		return presence.WrapError(presence.CodeRateLimited, err, err.Error())
	}
	if err := d.out.Originate(ctx, device, d.context, number); err != nil {
		var pe *presence.Error
		if errors.As(err, &pe) {
			return err // Asterisk's refusal, as it says it
		}
		return presence.WrapError(presence.CodeAsteriskRejected, err, "dialling "+number+": "+err.Error())
	}
	return nil
}
