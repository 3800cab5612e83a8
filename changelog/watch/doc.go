// Package watch is the hub every watcher (WebSocket, SSE, webhooks, the
// board) is a view of. A subscriber gets a consistent snapshot and then
// every change after it, each with a global, strictly increasing sequence
// number; it can come back with the last number it saw and get exactly
// what it missed while that is still there. With a Log the numbers are
// the change log's: every change is written to it in order, the numbering
// goes on across restarts, the hub starts from the state the log last
// held, and a subscriber resumes from the log when the hub's history in
// memory no longer reaches back (after a restart, for one).
//
// Delivery is pull-based (Sub.Next), so the hub runs no goroutine per
// subscriber and a slow one never delays the others. Each subscriber has a
// bounded backlog: when it overflows, changes to the same hint or provider
// are coalesced to the latest (every change carries the whole state, so
// nothing true now is lost); a subscriber whose backlog stays over the
// bound after coalescing for HopelessAfter is dropped, with the reason.
package watch
