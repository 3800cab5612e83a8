package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/ratelimit"
)

// Hints is what the API reads hints from (*hints.Table is one).
type Hints interface {
	Snapshot() []*hints.State
	Get(context, exten string) (hints.State, bool)
}

// Presence is what the API reads and writes presence through. Writes
// have no channel: pending reports a write that waits for Asterisk.
type Presence interface {
	Get(user string) (presence.Value, bool)
	Set(ctx context.Context, user string, v presence.Value) (got presence.Value, pending bool, err error)
	Restore(ctx context.Context, user string) (got presence.Value, pending bool, err error)
}

// errorBody is the JSON of every error: a stable code and a sentence.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[presence.Code]int{
	presence.CodeInvalidState: 400, presence.CodeInvalidUser: 400, presence.CodeInvalidText: 400,
	presence.CodeInvalidArgument: 400, presence.CodeTooLong: 400, presence.CodeNotFound: 404,
	presence.CodeAsteriskRejected: 502, codeTooLarge: 413, presence.CodeTargetRefused: 400, presence.CodeUnavailable: 503, presence.CodeInternal: 500,
	presence.CodeNotAllowed: 403, presence.CodeRateLimited: 429,
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = errCode, msg
	writeJSON(w, code, b)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	code := presence.ErrorCode(err)
	if code == presence.CodeInternal {
		s.cfg.Log.Error().Err(err).Msg("http request failed")
	}
	st, ok := statusOf[code]
	if !ok {
		st = 500
	}
	if wait, limited := ratelimit.RetryAfter(err); limited {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
	}
	writeError(w, st, string(code), presence.ErrorMessage(err))
}

// guard wraps a handler with the scope it needs (when tokens exist).
// queryOK lets the token come as ?access_token= (event streams, where a
// browser cannot send a header). A write is logged with the token's name:
// the audit line.
func (s *Server) guard(need Scope, queryOK bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, name := s.tokenOf(r, queryOK)
		switch {
		case got == 0:
			letGo(w)
			w.Header().Set("WWW-Authenticate", `Bearer realm="presenced"`)
			writeError(w, 401, "UNAUTHORIZED", "a valid bearer token is required")
			return
		case got < need:
			letGo(w)
			writeError(w, 403, "FORBIDDEN", "the token's scope does not allow this")
			return
		}
		// Who asks, for the services' audit lines and limits.
		r = r.WithContext(actor.With(r.Context(), actor.Actor{Door: "http", Name: name, Remote: s.clientAddr(r)}))
		if need < ScopeWrite || r.Method == http.MethodGet {
			h(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		s.cfg.Log.Info().Str("token", name).Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
			Str("remote", s.clientAddr(r)).Msg("api write")
	}
}

// statusWriter remembers the status of an answer, for the audit line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(b)
}

// tokenOf returns the scope and token name of a request that passed guard
// (open mode: admin, "open").
func (s *Server) tokenOf(r *http.Request, queryOK bool) (Scope, string) {
	if s.open() {
		return ScopeAdmin, "open"
	}
	return s.cfg.Tokens.scopeOf(r, queryOK)
}

// hidesParties reports whether the request's token sees calls without
// their other party (scope "states"); open mode sees everything.
func (s *Server) hidesParties(r *http.Request, queryOK bool) bool {
	return !s.open() && s.cfg.Tokens.hides(r, queryOK)
}

// route is one endpoint of the API; the table is what the mux serves and
// what the OpenAPI document is checked against.
type route struct {
	Method, Path string // Path in the mux's pattern syntax, which OpenAPI shares
	Scope        Scope
	Query        bool // the token may come as ?access_token= (event streams)
	needs        func(*Server) bool
	handler      func(*Server) http.HandlerFunc
}

func hasHints(s *Server) bool    { return s.cfg.Hints != nil }
func hasHub(s *Server) bool      { return s.cfg.Hub != nil }
func hasPresence(s *Server) bool { return s.cfg.Presence != nil }
func always(*Server) bool        { return true }
func hasCalls(s *Server) bool    { return s.cfg.Calls != nil && s.cfg.Hints != nil }
func hasDialer(s *Server) bool   { return hasCalls(s) && s.cfg.Dialer != nil }

var routeTable = []route{
	{"GET", "/healthz", 0, false, always, func(s *Server) http.HandlerFunc { return s.healthz }},
	{"GET", "/readyz", ScopeRead, false, always, func(s *Server) http.HandlerFunc { return s.readyz }},
	{"GET", "/metrics", ScopeRead, false, always, func(s *Server) http.HandlerFunc { return s.metrics }},
	{"GET", "/v1/openapi.json", 0, false, always, func(*Server) http.HandlerFunc { return serveOpenAPI }},
	{"GET", "/v1/whoami", ScopeRead, false, always, func(s *Server) http.HandlerFunc { return s.whoami }},
	{"GET", "/v1/roster", ScopeRead, false, always, func(s *Server) http.HandlerFunc { return s.roster }},
	{"GET", "/v1/hints", ScopeRead, false, hasHints, func(s *Server) http.HandlerFunc { return s.listHints }},
	{"GET", "/v1/hints/{ref}", ScopeRead, false, hasHints, func(s *Server) http.HandlerFunc { return s.getHint }},
	{"GET", "/v1/events", ScopeRead, true, hasHub, func(s *Server) http.HandlerFunc { return s.events }},
	{"GET", "/v1/ws", ScopeRead, true, hasHub, func(s *Server) http.HandlerFunc { return s.websocket }},
	{"GET", "/v1/calls", ScopeRead, false, hasCalls, func(s *Server) http.HandlerFunc { return s.listCalls }},
	{"POST", "/v1/calls", ScopeWrite, false, hasDialer, func(s *Server) http.HandlerFunc { return s.dial }},
	{"POST", "/v1/calls/hangup", ScopeWrite, false, hasDialer, func(s *Server) http.HandlerFunc { return s.hangup }},
	{"GET", "/v1/phone-events", 0, true, hasPhones, func(s *Server) http.HandlerFunc { return s.phoneEvent }},
	{"POST", "/v1/phone-events", ScopeWrite, false, hasPhones, func(s *Server) http.HandlerFunc { return s.postPhoneEvent }},
	{"GET", "/v1/forwards/{user}", ScopeRead, false, hasForwards, func(s *Server) http.HandlerFunc { return s.getForwards }},
	{"PUT", "/v1/forwards/{user}/{kind}", ScopeWrite, false, hasForwards, func(s *Server) http.HandlerFunc { return s.setForward }},
	{"GET", "/v1/presence", ScopeRead, false, hasHub, func(s *Server) http.HandlerFunc { return s.listPresence }},
	{"GET", "/v1/presence/{user}", ScopeRead, false, hasPresence, func(s *Server) http.HandlerFunc { return s.getPresence }},
	{"PUT", "/v1/presence/{user}", ScopeWrite, false, hasPresence, func(s *Server) http.HandlerFunc { return s.setPresence }},
	{"POST", "/v1/presence/{user}/restore", ScopeWrite, false, hasPresence, func(s *Server) http.HandlerFunc { return s.restorePresence }},
	{"POST", "/v1/webhooks", ScopeAdmin, false, hasWebhooks, func(s *Server) http.HandlerFunc { return s.createWebhook }},
	{"GET", "/v1/webhooks", ScopeAdmin, false, hasWebhooks, func(s *Server) http.HandlerFunc { return s.listWebhooks }},
	{"GET", "/v1/webhooks/{id}", ScopeAdmin, false, hasWebhooks, func(s *Server) http.HandlerFunc { return s.getWebhook }},
	{"DELETE", "/v1/webhooks/{id}", ScopeAdmin, false, hasWebhooks, func(s *Server) http.HandlerFunc { return s.deleteWebhook }},
	{"POST", "/v1/webhooks/{id}/test", ScopeAdmin, false, hasWebhooks, func(s *Server) http.HandlerFunc { return s.testWebhook }},
}

func (s *Server) routes(mux *http.ServeMux) {
	for _, r := range routeTable {
		if r.needs(s) {
			h := r.handler(s)
			if r.Scope > 0 {
				h = s.guard(r.Scope, r.Query, h)
			}
			mux.HandleFunc(r.Method+" "+r.Path, h)
		}
	}
}

// listHints lists this site's hints (as its Asterisk has them now), then,
// in a cluster of several sites, every other site's (as the change log
// last told), each with its site; ?context= and ?site= narrow it.
func (s *Server) listHints(w http.ResponseWriter, r *http.Request) {
	ctx, site := r.URL.Query().Get("context"), r.URL.Query().Get("site")
	out := []*hints.State{}
	for _, st := range s.cfg.Hints.Snapshot() {
		if (ctx == "" || st.Context == ctx) && (site == "" || site == s.site()) {
			out = append(out, st)
		}
	}
	for _, st := range s.otherSites() {
		if (ctx == "" || st.Context == ctx) && (site == "" || st.Site == site) {
			out = append(out, st)
		}
	}
	writeJSON(w, 200, s.list("hints", out))
}

// site is this node's site ("" alone, or in a cluster of one site).
func (s *Server) site() string {
	if s.cfg.Hub == nil {
		return ""
	}
	return s.cfg.Hub.Site()
}

// otherSites returns the other sites' hints the hub holds, by key.
func (s *Server) otherSites() []*hints.State {
	if s.cfg.Hub == nil {
		return nil
	}
	var out []*hints.State
	for _, ev := range s.cfg.Hub.Current() {
		if st, ok := ev.Value.(hints.State); ok && !ev.Gone() && st.Site != "" && st.Site != s.site() {
			out = append(out, &st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// getHint reads one hint of this site, or, with ?site=, of another.
func (s *Server) getHint(w http.ResponseWriter, r *http.Request) {
	exten, context, err := hints.ParseHintRef(r.PathValue("ref"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if site := r.URL.Query().Get("site"); site != "" && site != s.site() {
		key := hints.Hint{Site: site, Exten: exten, Context: context}.Key()
		for _, st := range s.otherSites() {
			if st.Key() == key {
				writeJSON(w, 200, st)
				return
			}
		}
		s.fail(w, presence.Errorf(presence.CodeNotFound, "there is no hint %s", key))
		return
	}
	st, ok := s.cfg.Hints.Get(context, exten)
	if !ok {
		s.fail(w, presence.Errorf(presence.CodeNotFound, "there is no hint %s@%s", exten, context))
		return
	}
	writeJSON(w, 200, st)
}

// listPresence lists the presence of every provider presenced knows
// (its own users' and those seen over AMI), sorted by provider.
func (s *Server) listPresence(w http.ResponseWriter, _ *http.Request) {
	out := []ssePresence{}
	for _, ev := range s.cfg.Hub.Current() {
		if p, ok := ev.Value.(hints.ProviderPresence); ok {
			out = append(out, ssePresence{ev.Key, p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	writeJSON(w, 200, s.list("presence", out))
}

type presenceOut struct {
	User     string         `json:"user"`
	Provider string         `json:"provider"`
	Presence presence.Value `json:"presence"`
	Pending  bool           `json:"pending,omitempty"`
	// Stale: this node is cut off from its cluster; the presence is the
	// last it knew.
	Stale bool `json:"stale,omitempty"`
}

func (s *Server) getPresence(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if err := presence.ValidateUser(user); err != nil {
		s.fail(w, err)
		return
	}
	v, ok := s.cfg.Presence.Get(user)
	if !ok {
		s.fail(w, presence.Errorf(presence.CodeNotFound, "presenced knows no presence of %s", user))
		return
	}
	_, stale := s.stale()
	writeJSON(w, 200, presenceOut{User: user, Provider: presence.Provider(user), Presence: v, Stale: stale})
}

// setRequest is the body of PUT /v1/presence/{user}.
type setRequest struct {
	State   string `json:"state"`
	Subtype string `json:"subtype"`
	Message string `json:"message"`
	For     string `json:"for"` // "30m"; empty: until changed
}

// maxBody bounds request bodies (413 beyond).
const maxBody = 16 << 10

func decode(r *http.Request, v any) error { return decodeBody(r.Body, v) }

func (s *Server) setPresence(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if err := presence.ValidateUser(user); err != nil {
		s.fail(w, err)
		return
	}
	var req setRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, err)
		return
	}
	st, err := presence.ParseState(req.State)
	if err != nil {
		s.fail(w, err)
		return
	}
	v := presence.Value{State: st, Subtype: req.Subtype, Message: req.Message}
	if req.For != "" {
		d, err := presence.ParseFor(req.For)
		if err != nil {
			s.fail(w, err)
			return
		}
		v.Expires = time.Now().Add(d)
	}
	got, pending, err := s.cfg.Presence.Set(r.Context(), user, v)
	s.answerWrite(w, user, got, pending, err)
}

func (s *Server) restorePresence(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if err := presence.ValidateUser(user); err != nil {
		s.fail(w, err)
		return
	}
	got, pending, err := s.cfg.Presence.Restore(r.Context(), user)
	s.answerWrite(w, user, got, pending, err)
}

// answerWrite: 200 with the presence; 202 when the write waits for
// Asterisk.
func (s *Server) answerWrite(w http.ResponseWriter, user string, got presence.Value, pending bool, err error) {
	if err != nil {
		s.fail(w, err)
		return
	}
	code := 200
	if pending {
		code = 202
	}
	writeJSON(w, code, presenceOut{User: user, Provider: presence.Provider(user), Presence: got, Pending: pending})
}
