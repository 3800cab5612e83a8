package hints

import "strings"

// DeviceState is Asterisk's enum ast_device_state, with its numeric values.
type DeviceState uint8

// The nine device states.
const (
	Unknown     DeviceState = iota // AST_DEVICE_UNKNOWN
	NotInUse                       // AST_DEVICE_NOT_INUSE
	InUse                          // AST_DEVICE_INUSE
	Busy                           // AST_DEVICE_BUSY
	Invalid                        // AST_DEVICE_INVALID
	Unavailable                    // AST_DEVICE_UNAVAILABLE
	Ringing                        // AST_DEVICE_RINGING
	RingInUse                      // AST_DEVICE_RINGINUSE
	OnHold                         // AST_DEVICE_ONHOLD
)

var deviceStateNames = [...]string{"UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE", "ONHOLD"}

// DeviceStates lists the nine states in Asterisk's order.
func DeviceStates() []DeviceState {
	return []DeviceState{Unknown, NotInUse, InUse, Busy, Invalid, Unavailable, Ringing, RingInUse, OnHold}
}

// String returns the name ARI and AMI use ("NOT_INUSE").
func (d DeviceState) String() string {
	if int(d) < len(deviceStateNames) {
		return deviceStateNames[d]
	}
	return "UNKNOWN"
}

// ParseDeviceState reads a device state name case-insensitively; any other
// text is Unknown, as ast_devstate_val has it.
func ParseDeviceState(s string) DeviceState {
	for i, n := range deviceStateNames {
		if strings.EqualFold(n, s) {
			return DeviceState(i)
		}
	}
	return Unknown
}

// MarshalText writes the name.
func (d DeviceState) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// deviceRank is state_order of ast_devstate_aggregate_add:
// INVALID < UNKNOWN < UNAVAILABLE < NOT_INUSE < ONHOLD < RINGING < INUSE < BUSY < RINGINUSE.
var deviceRank = [...]uint8{
	Unknown: 1, NotInUse: 3, InUse: 6, Busy: 7, Invalid: 0, Unavailable: 2, Ringing: 5, RingInUse: 8, OnHold: 4,
}

// Aggregate combines the device states of a hint as
// ast_devstate_aggregate_add does. The zero value is not ready: use
// NewAggregate.
type Aggregate struct {
	state          DeviceState
	ringing, inuse bool
}

// NewAggregate returns an empty aggregate, whose result is Invalid.
func NewAggregate() Aggregate { return Aggregate{state: Invalid} }

// Add adds one device's state: the highest ranked state wins, except that
// RINGING together with INUSE, ONHOLD or BUSY gives RINGINUSE.
func (a *Aggregate) Add(s DeviceState) {
	switch s {
	case Ringing:
		a.ringing = true
	case InUse, OnHold, Busy:
		a.inuse = true
	}
	if a.ringing && a.inuse {
		a.state = RingInUse
	} else if int(s) < len(deviceRank) && deviceRank[s] > deviceRank[a.state] {
		a.state = s
	}
}

// Result is the aggregated state.
func (a Aggregate) Result() DeviceState { return a.state }

// UnmarshalText reads a name, as ParseDeviceState does.
func (d *DeviceState) UnmarshalText(b []byte) error {
	*d = ParseDeviceState(string(b))
	return nil
}

// DeviceStateFor is a device state whose extension state is e
// (ExtensionStateOf(DeviceStateFor(e)) == e), for a device that shows a
// hint's state on another hint: Idle is NOT_INUSE, InUse&Hold (which no
// one device state gives) is ONHOLD, and a removed hint INVALID (shown
// Unavailable).
func DeviceStateFor(e ExtensionState) DeviceState {
	switch e {
	case ExtIdle:
		return NotInUse
	case ExtInUse:
		return InUse
	case ExtBusy:
		return Busy
	case ExtUnavailable:
		return Unavailable
	case ExtRinging:
		return Ringing
	case ExtInUse | ExtRinging:
		return RingInUse
	case ExtOnHold, ExtInUse | ExtOnHold:
		return OnHold
	}
	return Invalid
}

// RemoteDevice names the device that shows, at one site, the hint of exten
// at another site (a cluster's cross-site BLF): in a hint,
// "Stasis:presenced-remote-paris-2001" follows Paris's 2001. Site names
// hold no "-" (presence.ValidateSite), so the name reads one way.
func RemoteDevice(site, exten string) string {
	return "Stasis:presenced-remote-" + site + "-" + exten
}
