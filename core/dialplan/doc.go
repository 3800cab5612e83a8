// Package dialplan holds the dialplan hooks, transport-neutral: a FastAGI
// session and a Stasis channel both run them through Hooks.Handle, which
// parses the request, calls the presence service and always leaves the
// result variables on the channel.
package dialplan
