// Package webhook delivers presenced's changes to other systems over HTTP,
// durably: every change of the watch hub is appended to a journal in the
// store with a sequence number that survives restarts, and each webhook
// delivers from the journal, in order, one event at a time, retrying with
// exponential backoff and jitter until its target answers 2xx, and keeps
// its cursor in the store. A target that is down for an hour gets every
// change, in order, when it returns; one that falls more than the backlog
// bound behind gets the latest state of each hint and provider instead
// (coalesced); a restart of presenced loses nothing.
//
// Two forms: POST of a signed JSON Event (Sign, Verify), and GET of an
// action URL template for systems that take only a URL.
package webhook
