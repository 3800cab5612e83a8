// Package presence is the core of presenced: the seven CustomPresence states,
// the presence value, the PRESENCE_STATE codec, the allow-list for user and
// provider names, and the presence service (set, get, toggle, restore, timed
// presence).
//
// It imports no transport. It declares what it needs from the outside: a
// Writer (something that can write and read PRESENCE_STATE on Asterisk, such
// as the channel a hook arrived on) and a Store (durable records).
package presence
