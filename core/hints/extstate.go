package hints

import "fmt"

// ExtensionState is Asterisk's enum ast_extension_states: bit flags, as
// AMI's ExtensionStatus "Status" carries them.
type ExtensionState int

// The extension states.
const (
	ExtRemoved     ExtensionState = -2 // the hint was removed
	ExtDeactivated ExtensionState = -1 // the hint's extension is gone
	ExtIdle        ExtensionState = 0
	ExtInUse       ExtensionState = 1
	ExtBusy        ExtensionState = 2
	ExtUnavailable ExtensionState = 4
	ExtRinging     ExtensionState = 8
	ExtOnHold      ExtensionState = 16
)

// String is ast_extension_state2str: "Idle", "InUse", "Busy",
// "Unavailable", "Ringing", "InUse&Ringing", "Hold", "InUse&Hold", and
// "Unknown" for anything else (removed and deactivated included).
func (e ExtensionState) String() string {
	switch e {
	case ExtIdle:
		return "Idle"
	case ExtInUse:
		return "InUse"
	case ExtBusy:
		return "Busy"
	case ExtUnavailable:
		return "Unavailable"
	case ExtRinging:
		return "Ringing"
	case ExtInUse | ExtRinging:
		return "InUse&Ringing"
	case ExtOnHold:
		return "Hold"
	case ExtInUse | ExtOnHold:
		return "InUse&Hold"
	}
	return "Unknown"
}

// MarshalText writes the name.
func (e ExtensionState) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// ExtensionStateOf is ast_devstate_to_extenstate.
func ExtensionStateOf(d DeviceState) ExtensionState {
	switch d {
	case OnHold:
		return ExtOnHold
	case Busy:
		return ExtBusy
	case Unknown, NotInUse:
		return ExtIdle
	case Unavailable, Invalid:
		return ExtUnavailable
	case RingInUse:
		return ExtInUse | ExtRinging
	case Ringing:
		return ExtRinging
	case InUse:
		return ExtInUse
	}
	return ExtIdle
}

// UnmarshalText reads a name written by MarshalText ("InUse&Ringing");
// "Unknown" reads as ExtRemoved.
func (e *ExtensionState) UnmarshalText(b []byte) error {
	if string(b) == "Unknown" {
		*e = ExtRemoved
		return nil
	}
	for _, s := range []ExtensionState{ExtIdle, ExtInUse, ExtBusy, ExtUnavailable, ExtRinging, ExtInUse | ExtRinging, ExtOnHold, ExtInUse | ExtOnHold} {
		if s.String() == string(b) {
			*e = s
			return nil
		}
	}
	return fmt.Errorf("unknown extension state %q", b)
}
