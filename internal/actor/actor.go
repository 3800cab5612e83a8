// Package actor names who asks for a change: the door it came through
// (http, ws, xuc, appws, dpma, agi, ari, phone), the token, login or
// channel, and the address it came from. Each door puts it in the
// request's context once; the services that dial or forward read it for
// their audit line and their limits, so that no door can forget either.
package actor

import "context"

// Actor is who asks.
type Actor struct {
	Door   string // the way in: "http", "ws", "xuc", "agi", ...
	Name   string // the token's name, the login, or the channel
	Remote string // the address it came from, when known
}

// String is "door:name", the key of per-token limits.
func (a Actor) String() string {
	if a.Door == "" && a.Name == "" {
		return "unknown"
	}
	return a.Door + ":" + a.Name
}

type key struct{}

// With returns ctx carrying a.
func With(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, key{}, a)
}

// From returns the actor ctx carries; the zero Actor ("unknown") when none.
func From(ctx context.Context) Actor {
	a, _ := ctx.Value(key{}).(Actor)
	return a
}
