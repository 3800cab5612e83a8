package main

import (
	"sync/atomic"

	"github.com/presenced/presenced/voicemail"
	"github.com/presenced/presenced/watch"
)

// mailboxes puts voicemail boxes' counts, as the AMI feed reads them, in
// the change log: watchers of everything, webhooks and the board see
// them (an ami.MailboxSink).
type mailboxes struct {
	hub     *watch.Hub
	site    string        // PRESENCED_SITE
	version atomic.Uint64 // orders the changes of a box, as the feed gives them
}

func (b *mailboxes) item(c voicemail.Count) watch.Item {
	c.Site = b.site
	return watch.Item{Kind: watch.KindMailbox, Key: c.Key(), Version: b.version.Add(1), Mailbox: c}
}

// MailboxChanged publishes one box's counts.
func (b *mailboxes) MailboxChanged(c voicemail.Count) { b.hub.Publish(b.item(c)) }

// MailboxCounts publishes every box's counts after a (re)connect; a box
// known before and no longer listed (removed from voicemail.conf) is
// shown empty. Counts that did not change are not changes.
func (b *mailboxes) MailboxCounts(cs []voicemail.Count) {
	listed := map[string]bool{}
	items := make([]watch.Item, 0, len(cs))
	for _, c := range cs {
		it := b.item(c)
		listed[it.Key] = true
		items = append(items, it)
	}
	for _, ev := range b.hub.Current() {
		mb := ev.Mailbox
		if ev.Kind == watch.KindMailbox && mb.Site == b.site && !listed[ev.Key] && (mb.New != 0 || mb.Old != 0) {
			items = append(items, b.item(voicemail.Count{Mailbox: mb.Mailbox}))
		}
	}
	b.hub.Publish(items...)
}
