package calls

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/presenced/presenced/changelog/change"
)

// PhoneEvent is a call event a phone reports itself (an action URL): what
// the phone shows, which AMI does not always know (the phone's own call
// id, its account, a conference made on the phone).
type PhoneEvent struct {
	// User is whose phone it is; Site, in a cluster of sites, where.
	User string `json:"user"`
	Site string `json:"site,omitempty"`
	// Event is one of PhoneEventTypes.
	Event     string `json:"event"`
	CallID    string `json:"callId,omitempty"`
	AccountID string `json:"accountId,omitempty"`
	Number    string `json:"number,omitempty"`
	Name      string `json:"name,omitempty"`
	MAC       string `json:"mac,omitempty"`
}

// Key is the phone's name in the change log: "phone:" and the user, after
// its site in a cluster of sites.
func (e PhoneEvent) Key() string {
	if e.Site != "" {
		return e.Site + "/phone:" + e.User
	}
	return "phone:" + e.User
}

// Gone: a phone's call event is an event, not a state, and stays out of
// snapshots (change.Goner).
func (e PhoneEvent) Gone() bool { return true }

// Change is the event as a change (KindPhone).
func (e PhoneEvent) Change() change.Change {
	return change.Change{Kind: KindPhone, Key: e.Key(), Value: e, Source: "phones"}
}

// WithoutParty returns the event without the other party (number, name).
func (e PhoneEvent) WithoutParty() PhoneEvent {
	e.Number, e.Name = "", ""
	return e
}

// PhoneEventTypes are the call events phones report (Auerswald's names;
// Snom and Yealink send the same through the URLs configured for them).
var PhoneEventTypes = []string{"incoming", "outgoing", "remoteUpdate", "connected", "holding", "resumed",
	"disconnected", "conferenced", "transferred", "transfer_done", "missed"}

// IsPhoneEventType reports whether t is one of PhoneEventTypes.
func IsPhoneEventType(t string) bool {
	for _, k := range PhoneEventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// PhoneNumber reads the other party as a phone sends it: a number, or a
// SIP URI ("sip:1001@pbx.example.com;user=phone", Snom's $remote), whose
// user part is taken. At most 64 bytes of printable text; no separators
// of the lists and templates it may reach.
func PhoneNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	if low := strings.ToLower(s); strings.HasPrefix(low, "sip:") || strings.HasPrefix(low, "sips:") || strings.HasPrefix(low, "tel:") {
		_, s, _ = strings.Cut(s, ":")
		s, _, _ = strings.Cut(s, "@")
		s, _, _ = strings.Cut(s, ";")
	}
	return s, printable("number", s, 64)
}

// PhoneText checks a phone's free text (a name, an id): valid UTF-8, at
// most max bytes, no control characters.
func PhoneText(what, s string, max int) error { return printable(what, s, max) }

func printable(what, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%s: at most %d bytes of UTF-8", what, max)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("%s: holds a control character", what)
		}
	}
	return nil
}
