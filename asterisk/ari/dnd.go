package ari

import (
	"context"

	"github.com/presenced/presenced/core/presence"
)

// DND drives each user's DND device (presence.DNDDevice): BUSY while DND
// is on, INVALID when it is off. INVALID, not DELETE: a deleted device
// reads UNKNOWN but Asterisk sends no state change, so a hint would stay
// Busy; and INVALID ranks below every real state, so it never hides the
// phone (BEHAVIOUR.md 4.10).
type DND struct{ Client *Client }

var _ presence.DNDSwitch = DND{}

// SetDND sets the user's DND device.
func (d DND) SetDND(ctx context.Context, user string, on bool) error {
	if err := presence.ValidateUser(user); err != nil {
		return err
	}
	state := "INVALID"
	if on {
		state = "BUSY"
	}
	if err := d.Client.SetDeviceState(ctx, presence.DNDDevice(user), state); err != nil {
		return presence.WrapError(presence.CodeUnavailable, err, "could not set the DND device of "+user)
	}
	return nil
}
