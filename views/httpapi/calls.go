package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// Calls gives the calls on Asterisk's channels (*calls.Book).
type Calls interface {
	All() []calls.Call
}

// Dialer places and ends calls (*calls.Dialer).
type Dialer interface {
	// Dial rings user's device, then dials number (AMI Originate), as
	// the dial policy and limits allow.
	Dial(ctx context.Context, user, device, number string) error
	// Hangup hangs up a channel.
	Hangup(ctx context.Context, channel string) error
}

// restCall is a call with the hints whose devices it is on.
type restCall struct {
	calls.Call
	Hints []string `json:"hints"`
}

// listCalls lists the calls on the devices of hints: every hint's, or a
// user's (?user=: the hints whose extension is the user, or whose
// presence is the user's CustomPresence). Calls on devices no hint
// names (trunks, Local channels) are not listed.
func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "user" {
			s.fail(w, presence.Errorf(presence.CodeInvalidArgument, "unknown query parameter %q (known: user)", k))
			return
		}
	}
	user, byUser := q.Get("user"), q.Has("user")
	if byUser {
		if err := presence.ValidateUser(user); err != nil {
			s.fail(w, err)
			return
		}
	}
	onDevice := s.hintDevices(user, byUser)
	hide := s.hidesParties(r, false)
	out := []restCall{}
	for _, c := range s.cfg.Calls.All() {
		if hs, ok := onDevice[strings.ToLower(c.Device)]; ok {
			if hide {
				c = c.WithoutParty()
			}
			out = append(out, restCall{Call: c, Hints: hs})
		}
	}
	writeJSON(w, 200, s.list("calls", out))
}

// hintDevices maps the devices of hints (a user's, when byUser), lower
// case as Asterisk's device names ignore case, to the hints naming each.
func (s *Server) hintDevices(user string, byUser bool) map[string][]string {
	onDevice := map[string][]string{}
	for _, st := range s.cfg.Hints.Snapshot() {
		if byUser && st.Exten != user && !slices.Contains(st.Providers, hints.ProviderKey(presence.Provider(user))) {
			continue
		}
		for _, d := range st.Devices {
			d = strings.ToLower(d)
			onDevice[d] = append(onDevice[d], st.Key())
		}
	}
	return onDevice
}

// userDevices returns, for each hint of a user (its extension is the
// user, or its presence the user's CustomPresence), the hint's key and
// devices.
func (s *Server) userDevices(user string) (keys []string, devices []string) {
	for _, st := range s.cfg.Hints.Snapshot() {
		if st.Exten == user || slices.Contains(st.Providers, hints.ProviderKey(presence.Provider(user))) {
			keys = append(keys, st.Key())
			devices = append(devices, st.Devices...)
		}
	}
	return keys, devices
}

type dialRequest struct {
	User   string `json:"user"`
	Number string `json:"number"`
}

// dial rings the user's phone (the first device of the user's hints that
// can be rung) and, when it answers, dials the number: click to dial.
// 202 once Asterisk has queued it; the call then shows in GET /v1/calls.
func (s *Server) dial(w http.ResponseWriter, r *http.Request) {
	var req dialRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, err)
		return
	}
	if err := presence.ValidateUser(req.User); err != nil {
		s.fail(w, err)
		return
	}
	if err := calls.ValidNumber(req.Number); err != nil {
		s.fail(w, presence.WrapError(presence.CodeInvalidArgument, err, "number: "+err.Error()))
		return
	}
	keys, devices := s.userDevices(req.User)
	i := slices.IndexFunc(devices, calls.Dialable)
	if i < 0 {
		s.fail(w, presence.Errorf(presence.CodeNotFound, "user %s has no hint with a phone to ring (hints: %v)", req.User, keys))
		return
	}
	if err := s.cfg.Dialer.Dial(r.Context(), req.User, devices[i], req.Number); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 202, map[string]string{"user": req.User, "device": devices[i], "number": req.Number})
}

type hangupRequest struct {
	Channel string `json:"channel"`
}

// hangup hangs up one call: the channel must be a call GET /v1/calls
// lists (on a hint's device), so nothing else reaches Asterisk.
func (s *Server) hangup(w http.ResponseWriter, r *http.Request) {
	var req hangupRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, err)
		return
	}
	onHint := s.hintDevices("", false)
	known := slices.ContainsFunc(s.cfg.Calls.All(), func(c calls.Call) bool {
		return c.Channel == req.Channel && onHint[strings.ToLower(c.Device)] != nil
	})
	if !known {
		s.fail(w, presence.Errorf(presence.CodeNotFound, "there is no call on channel %q", clip.Clip(req.Channel)))
		return
	}
	if err := s.cfg.Dialer.Hangup(r.Context(), req.Channel); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 202, map[string]string{"channel": req.Channel})
}
