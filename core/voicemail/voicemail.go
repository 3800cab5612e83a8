// Package voicemail is the message counts of voicemail boxes, as Asterisk
// reports them over AMI (BEHAVIOUR.md 4.20): one MessageWaiting event per
// change of a box's counts, and the whole list (VoicemailUsersList) to
// start from after each (re)connect. ARI carries no counts (only an
// MWI:<box> device, INUSE while new messages wait), so AMI is the source.
package voicemail

import (
	"fmt"
	"strconv"
	"strings"
)

// Count is one box's messages.
type Count struct {
	// Mailbox is "box@context", as Asterisk names it.
	Mailbox string `json:"mailbox"`
	New     int    `json:"new"`
	Old     int    `json:"old"`
	// Site, in a cluster of several sites, is the site whose Asterisk
	// holds the box (each site has its own 1001@default).
	Site string `json:"site,omitempty"`
}

// Key is the box's name in the change log: "box@context", after its site
// in a cluster of sites.
func (c Count) Key() string {
	if c.Site != "" {
		return c.Site + "/" + c.Mailbox
	}
	return c.Mailbox
}

// Waiting reports whether new messages wait (the phone's lamp): old
// messages do not count, as in Asterisk.
func (c Count) Waiting() bool { return c.New > 0 }

// Fields is an AMI event or list item (goami2.Message has this method).
type Fields interface{ Field(string) string }

// ValidMailbox checks a box's name: "box@context", each part 1 to 80
// letters, digits or "_-.+".
func ValidMailbox(m string) error {
	box, ctx, ok := strings.Cut(m, "@")
	if !ok || !validPart(box) || !validPart(ctx) {
		return fmt.Errorf("%q is not a voicemail box (box@context)", m)
	}
	return nil
}

func validPart(s string) bool {
	if s == "" || len(s) > 80 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.+", r)) {
			return false
		}
	}
	return true
}

func count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, fmt.Errorf("%q is not a message count", s)
	}
	return n, nil
}

// FromMessageWaiting reads a MessageWaiting event (Mailbox, New, Old).
func FromMessageWaiting(ev Fields) (Count, error) {
	c := Count{Mailbox: ev.Field("Mailbox")}
	if err := ValidMailbox(c.Mailbox); err != nil {
		return Count{}, err
	}
	var err error
	if c.New, err = count(ev.Field("New")); err != nil {
		return Count{}, err
	}
	if c.Old, err = count(ev.Field("Old")); err != nil {
		return Count{}, err
	}
	return c, nil
}

// FromUserEntry reads a VoicemailUserEntry of VoicemailUsersList
// (VMContext, VoiceMailbox, NewMessageCount, OldMessageCount).
func FromUserEntry(ev Fields) (Count, error) {
	c := Count{Mailbox: ev.Field("VoiceMailbox") + "@" + ev.Field("VMContext")}
	if err := ValidMailbox(c.Mailbox); err != nil {
		return Count{}, err
	}
	var err error
	if c.New, err = count(ev.Field("NewMessageCount")); err != nil {
		return Count{}, err
	}
	if c.Old, err = count(ev.Field("OldMessageCount")); err != nil {
		return Count{}, err
	}
	return c, nil
}
