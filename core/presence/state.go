package presence

import (
	"strings"

	"github.com/presenced/presenced/internal/clip"
)

// State is one of Asterisk's presence states (ast_presence_state), as
// PRESENCE_STATE() accepts them.
type State uint8

// The seven states that PRESENCE_STATE() can set. The zero value is NotSet,
// which is what Asterisk reports for a provider that was never written.
const (
	NotSet State = iota
	Unavailable
	Available
	Away
	XA
	Chat
	DND
)

var stateNames = [...]string{"not_set", "unavailable", "available", "away", "xa", "chat", "dnd"}

// States lists every state in Asterisk's order.
func States() []State {
	return []State{NotSet, Unavailable, Available, Away, XA, Chat, DND}
}

// String returns the lower-case name Asterisk uses.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// ParseState parses a state name case-insensitively, as Asterisk does.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(n, name) {
			return State(i), nil
		}
	}
	if name == "" {
		return 0, Errorf(CodeInvalidState, "no presence state given (one of %s)", strings.Join(stateNames[:], ", "))
	}
	return 0, Errorf(CodeInvalidState, "unknown presence state %q (one of %s)", clip.Clip(name), strings.Join(stateNames[:], ", "))
}

// MarshalText writes the state name, so JSON and the store carry names, not numbers.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
