package voicemail

import (
	"sync"

	"github.com/presenced/presenced/changelog/change"
)

// Kind is the kind of change of a box's counts (its number is in the
// change log: never reuse it).
const Kind change.Kind = 3

// Kinds are the codecs of the changes of voicemail.
func Kinds() []change.Codec { return []change.Codec{change.JSON[Count](Kind, "mailbox")} }

// Boxes turns the counts the AMI feed reads into changes (an
// ami.MailboxSink): watchers of everything, webhooks and the board see
// them. It remembers what it last said of each box, so that a box no
// longer listed after a reconnect (removed from voicemail.conf) is shown
// empty.
type Boxes struct {
	sink change.Sink
	site string

	mu      sync.Mutex
	version uint64           // orders the changes of a box, as the feed gives them
	shown   map[string]Count // by Key: the last counts appended
}

// NewBoxes returns the boxes of site (PRESENCED_SITE; "" alone), whose
// changes go to sink; known are the changes of boxes the change log holds
// from before (those of other kinds or sites are passed over), so that a
// box removed while presenced was stopped is shown empty too.
func NewBoxes(sink change.Sink, site string, known []change.Change) *Boxes {
	b := &Boxes{sink: sink, site: site, shown: map[string]Count{}}
	for _, c := range known {
		if n, ok := c.Value.(Count); ok && c.Kind == Kind && n.Site == site {
			b.shown[n.Key()] = n
		}
	}
	return b
}

// change makes c a change; b.mu is held.
func (b *Boxes) change(c Count) change.Change {
	c.Site = b.site
	b.version++
	b.shown[c.Key()] = c
	return change.Change{Kind: Kind, Key: c.Key(), Version: b.version, Value: c, Source: "voicemail"}
}

// MailboxChanged takes one box's counts.
func (b *Boxes) MailboxChanged(c Count) {
	b.mu.Lock()
	ch := b.change(c)
	b.mu.Unlock()
	b.sink.Append(ch)
}

// MailboxCounts takes every box's counts after a (re)connect; a box shown
// before and no longer listed is shown empty. Counts that did not change
// are not changes (the hub drops them).
func (b *Boxes) MailboxCounts(cs []Count) {
	b.mu.Lock()
	listed := map[string]bool{}
	out := make([]change.Change, 0, len(cs))
	for _, c := range cs {
		ch := b.change(c)
		listed[ch.Key] = true
		out = append(out, ch)
	}
	for key, c := range b.shown {
		if !listed[key] && (c.New != 0 || c.Old != 0) {
			out = append(out, b.change(Count{Mailbox: c.Mailbox}))
		}
	}
	b.mu.Unlock()
	b.sink.Append(out...)
}
