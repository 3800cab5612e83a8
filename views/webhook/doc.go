// Package webhook delivers presenced's changes to other systems over HTTP,
// durably: each webhook delivers from the hub's change log (watch.Log, in
// the store), with the log's numbers as event ids, in order, one event at a
// time, retrying with exponential backoff and jitter until its target
// answers 2xx, and keeps its cursor in the store as it goes (after every
// batch). A target that is down for an hour gets every change, in order,
// when it returns; one that falls further behind than the log's retention
// gets the latest state of each hint and provider instead (coalesced); a
// restart of presenced, or a crash, loses nothing. The manager also trims
// the log to its retention.
//
// Two forms: POST of a signed JSON Event (Sign, Verify), and GET of an
// action URL template for systems that take only a URL.
package webhook
