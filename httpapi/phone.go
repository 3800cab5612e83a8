package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/presenced/presenced/calls"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/presence"
)

// Phones is what desk phones' action URLs reach: their DND key (the same
// DND as the dnd hooks), their call events (into the change log), and the
// users of phones named by MAC address.
type Phones interface {
	SetDND(ctx context.Context, user string, on bool) error
	PhoneEvent(e calls.PhoneEvent)
	// UserOfMAC returns the user of a phone (PRESENCED_PHONES).
	UserOfMAC(mac string) (string, bool)
}

func hasPhones(s *Server) bool { return s.cfg.Phones != nil }

// phoneParams are the parameters GET /v1/phone-events takes.
var phoneParams = []string{"event", "user", "mac", "AuthToken", "access_token", "callId", "accountId", "number", "name"}

// phoneEvent serves GET /v1/phone-events: a phone's action URL. The phone
// authenticates with a token (Authorization: Bearer, or ?AuthToken= as
// the phones' own URLs carry it) of scope phone/<users> naming the user,
// or of scope write or admin; it names its user with user= or mac=.
func (s *Server) phoneEvent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range q {
		if !slices.Contains(phoneParams, k) {
			s.fail(w, presence.Errorf(presence.CodeInvalidArgument, "unknown parameter %q (%s)", clip.Clip(k), strings.Join(phoneParams, ", ")))
			return
		}
		if len(v) != 1 {
			s.fail(w, presence.Errorf(presence.CodeInvalidArgument, "parameter %q given %d times", k, len(v)))
			return
		}
	}
	user, err := s.phoneUser(q.Get("user"), q.Get("mac"))
	if err != nil {
		s.fail(w, err)
		return
	}
	token := "open"
	if !s.open() {
		tok := q.Get("AuthToken")
		if tok == "" {
			tok = bearer(r, true)
		}
		e := s.cfg.Tokens.entry(tok)
		switch {
		case e == nil:
			writeError(w, 401, "UNAUTHORIZED", "a phone's token is needed (Authorization: Bearer, or ?AuthToken=)")
			return
		case e.phone != nil && !slices.Contains(e.phone, user), e.phone == nil && e.scope < ScopeWrite:
			writeError(w, 403, "FORBIDDEN", fmt.Sprintf("the token may not act for %s", user))
			return
		}
		token = e.name
	}
	ev := q.Get("event")
	switch {
	case ev == "dnd_on" || ev == "dnd_off":
		err = s.cfg.Phones.SetDND(r.Context(), user, ev == "dnd_on")
	case calls.IsPhoneEventType(ev):
		var pe calls.PhoneEvent
		if pe, err = phoneCall(user, ev, q.Get("callId"), q.Get("accountId"), q.Get("number"), q.Get("name"), q.Get("mac")); err == nil {
			s.cfg.Phones.PhoneEvent(pe)
		}
	default:
		err = presence.Errorf(presence.CodeInvalidArgument, "unknown event %q (dnd_on, dnd_off, %s)", clip.Clip(ev), strings.Join(calls.PhoneEventTypes, ", "))
	}
	s.cfg.Log.Info().Str("token", token).Str("method", "GET").Str("path", "/v1/phone-events").Str("event", clip.Clip(ev)).Str("user", user).
		Str("result", string(presence.ErrorCode(err))).Msg("api write")
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]string{"user": user, "event": ev})
}

// phoneUser is the user a phone names: user=, or its mac= through the
// phones file; both must agree.
func (s *Server) phoneUser(user, mac string) (string, error) {
	if mac != "" {
		u, ok := s.cfg.Phones.UserOfMAC(mac)
		if !ok {
			return "", presence.Errorf(presence.CodeNotFound, "no phone with MAC address %q in PRESENCED_PHONES", clip.Clip(mac))
		}
		if user != "" && user != u {
			return "", presence.Errorf(presence.CodeInvalidArgument, "the phone %s is %s's, not %s's", clip.Clip(mac), u, clip.Clip(user))
		}
		user = u
	}
	if user == "" {
		return "", presence.Errorf(presence.CodeInvalidUser, "name the phone's user (user=) or the phone (mac=)")
	}
	return user, presence.ValidateUser(user)
}

// phoneCall checks a call event's fields.
func phoneCall(user, event, callID, accountID, number, name, mac string) (calls.PhoneEvent, error) {
	e := calls.PhoneEvent{User: user, Event: event, CallID: callID, AccountID: accountID, Name: name, MAC: mac}
	var err error
	if e.Number, err = calls.PhoneNumber(number); err != nil {
		return calls.PhoneEvent{}, presence.Errorf(presence.CodeInvalidArgument, "%v", err)
	}
	for _, f := range []struct{ what, v string }{{"callId", callID}, {"accountId", accountID}, {"name", name}, {"mac", mac}} {
		if err := calls.PhoneText(f.what, f.v, 128); err != nil {
			return calls.PhoneEvent{}, presence.Errorf(presence.CodeInvalidArgument, "%v", err)
		}
	}
	return e, nil
}
