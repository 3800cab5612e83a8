package voicemail

import (
	"testing"

	"github.com/presenced/presenced/changelog/change"
)

// A box's counts are changes of its key, in order; after a reconnect a box
// no longer listed (removed from voicemail.conf), known from this run or
// from the log of an earlier one, is shown empty, once.
func TestBoxes(t *testing.T) {
	var got []change.Change
	sink := change.SinkFunc(func(cs ...change.Change) { got = append(got, cs...) })
	known := []change.Change{
		{Kind: Kind, Key: "paris/1009@default", Value: Count{Mailbox: "1009@default", New: 2, Site: "paris"}},
		{Kind: Kind, Key: "lyon/1009@default", Value: Count{Mailbox: "1009@default", New: 5, Site: "lyon"}}, // another site's
		{Kind: 99, Key: "x", Value: "not a box"},
	}
	b := NewBoxes(sink, "paris", known)
	b.MailboxChanged(Count{Mailbox: "1001@default", New: 1})
	if len(got) != 1 || got[0].Key != "paris/1001@default" || got[0].Value.(Count).Site != "paris" || got[0].Version == 0 {
		t.Fatalf("changed: %+v", got)
	}
	got = nil
	b.MailboxCounts([]Count{{Mailbox: "1002@default", Old: 1}})
	byKey := map[string]Count{}
	for _, c := range got {
		byKey[c.Key] = c.Value.(Count)
	}
	if len(got) != 3 || byKey["paris/1002@default"].Old != 1 || byKey["paris/1001@default"] != (Count{Mailbox: "1001@default", Site: "paris"}) ||
		byKey["paris/1009@default"] != (Count{Mailbox: "1009@default", Site: "paris"}) {
		t.Fatalf("counts after a reconnect: %+v", got)
	}
	// Shown empty once: the next list says nothing of them again.
	got = nil
	b.MailboxCounts([]Count{{Mailbox: "1002@default", Old: 1}})
	if len(got) != 1 || got[0].Key != "paris/1002@default" {
		t.Fatalf("the next list: %+v", got)
	}
}
