package hints

import "github.com/presenced/presenced/core/presence"

// ProviderPresence is what one presence provider reports: a presence, or
// Invalid when Asterisk cannot evaluate it (a stored value it cannot parse,
// a provider of an unknown technology).
type ProviderPresence struct {
	Value   presence.Value `json:"presence"`
	Invalid bool           `json:"invalid,omitempty"`
}

// presenceRank is state_order of ast_presence_state_helper (presencestate.c):
// INVALID < NOT_SET < AVAILABLE < UNAVAILABLE < CHAT < AWAY < XA < DND.
var presenceRank = [...]uint8{
	presence.NotSet: 1, presence.Available: 2, presence.Unavailable: 3, presence.Chat: 4,
	presence.Away: 5, presence.XA: 6, presence.DND: 7,
}

func rankOf(p ProviderPresence) uint8 {
	if p.Invalid || int(p.Value.State) >= len(presenceRank) {
		return 0
	}
	return presenceRank[p.Value.State]
}

// CombinePresence combines the providers of one hint as Asterisk does: the
// highest ranked state wins, with its subtype and message; among equals the
// first listed. No provider at all is not_set; providers that are all
// invalid give an invalid presence.
func CombinePresence(ps []ProviderPresence) ProviderPresence {
	if len(ps) == 0 {
		return ProviderPresence{}
	}
	best := ProviderPresence{Invalid: true}
	for _, p := range ps {
		if rankOf(p) > rankOf(best) {
			best = p
		}
	}
	return best
}
