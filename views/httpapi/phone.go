package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
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

// The limit of a token's phone events: phoneBurst at once, then one every
// phoneEvery. A call is four or five events; a phone token cannot push
// the change log's real history out of its retention (100,000 entries
// take more than two days at this pace).
const (
	phoneEvery = 2 * time.Second
	phoneBurst = 60
)

// phoneIn is one phone event: GET's parameters, or POST's body.
type phoneIn struct {
	Event     string `json:"event"`
	User      string `json:"user"`
	MAC       string `json:"mac"`
	CallID    string `json:"callId"`
	AccountID string `json:"accountId"`
	Number    string `json:"number"`
	Name      string `json:"name"`
}

// phoneEvent serves GET /v1/phone-events: a phone's action URL. A GET
// changes state here only because phones can send nothing else; so it
// always needs a token, even when the API has none (then it is refused:
// in open mode, a web page's <img> would otherwise set DND for anyone).
// The phone authenticates with a token (Authorization: Bearer, or
// ?AuthToken= as the phones' own URLs carry it) of scope phone/<users>
// naming the user, or of scope write or admin; it names its user with
// user= or mac=, looked up only once the token is known.
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
	if s.open() {
		writeError(w, 403, "FORBIDDEN", "phone action URLs need a phone token (PRESENCED_API_TOKENS, scope phone/<users>); without tokens, POST /v1/phone-events")
		return
	}
	tok := q.Get("AuthToken")
	if tok == "" {
		tok = bearer(r, true)
	}
	e := s.cfg.Tokens.entry(tok)
	switch {
	case e == nil:
		writeError(w, 401, "UNAUTHORIZED", "a phone's token is needed (Authorization: Bearer, or ?AuthToken=)")
		return
	case e.phone == nil && e.scope < ScopeWrite:
		writeError(w, 403, "FORBIDDEN", "the token may not report phone events")
		return
	}
	in := phoneIn{Event: q.Get("event"), User: q.Get("user"), MAC: q.Get("mac"), CallID: q.Get("callId"),
		AccountID: q.Get("accountId"), Number: q.Get("number"), Name: q.Get("name")}
	s.phone(w, r, e.name, e.phone, in)
}

// postPhoneEvent serves POST /v1/phone-events: the same event as a JSON
// body, for scripts and for the API without tokens (a POST with a JSON
// body, which no other web site can make a browser send here).
func (s *Server) postPhoneEvent(w http.ResponseWriter, r *http.Request) {
	var in phoneIn
	if err := decode(r, &in); err != nil {
		s.fail(w, err)
		return
	}
	_, name := s.tokenOf(r, false)
	s.phone(w, r, name, nil, in)
}

// phone checks and applies one phone event of the token named token;
// only lists the users a phone token may act for (nil: any).
func (s *Server) phone(w http.ResponseWriter, r *http.Request, token string, only []string, in phoneIn) {
	user, err := s.phoneUser(in.User, in.MAC)
	if err == nil && only != nil && !slices.Contains(only, user) {
		writeError(w, 403, "FORBIDDEN", fmt.Sprintf("the token may not act for %s", user))
		return
	}
	if err == nil {
		if lerr := s.phoneLimit.Check(token, "phone events of the token "+token); lerr != nil {
			err = presence.WrapError(presence.CodeRateLimited, lerr, lerr.Error())
		}
	}
	if err == nil {
		err = s.applyPhone(r.Context(), user, in)
	}
	s.cfg.Log.Info().Str("token", token).Str("method", r.Method).Str("path", "/v1/phone-events").Str("event", clip.Clip(in.Event)).
		Str("user", clip.Clip(user)).Str("remote", s.clientAddr(r)).Str("result", string(presence.ErrorCode(err))).Msg("api write")
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, map[string]string{"user": user, "event": in.Event})
}

func (s *Server) applyPhone(ctx context.Context, user string, in phoneIn) error {
	switch ev := in.Event; {
	case ev == "dnd_on" || ev == "dnd_off":
		return s.cfg.Phones.SetDND(ctx, user, ev == "dnd_on")
	case calls.IsPhoneEventType(ev):
		pe, err := phoneCall(user, ev, in.CallID, in.AccountID, in.Number, in.Name, in.MAC)
		if err == nil {
			s.cfg.Phones.PhoneEvent(pe)
		}
		return err
	default:
		return presence.Errorf(presence.CodeInvalidArgument, "unknown event %q (dnd_on, dnd_off, %s)", clip.Clip(ev), strings.Join(calls.PhoneEventTypes, ", "))
	}
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
