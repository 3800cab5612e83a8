package main

import (
	"sync/atomic"

	"github.com/presenced/presenced/calls"
	"github.com/presenced/presenced/watch"
)

// callsLog puts the calls on each device, as the calls.Book tells them,
// in the change log: watchers of everything, webhooks and the board see
// them.
type callsLog struct {
	hub     *watch.Hub
	site    string        // PRESENCED_SITE
	version atomic.Uint64 // orders a device's changes, as the book gives them
}

func (l *callsLog) publish(d calls.DeviceCalls) {
	d.Site = l.site
	l.hub.Publish(watch.Item{Kind: watch.KindCalls, Key: d.Key(), Version: l.version.Add(1), Calls: d})
}
