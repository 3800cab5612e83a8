package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/presenced/presenced/calls"
	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/presence"
)

// Calls gives the calls on Asterisk's channels (calls.Book).
type Calls interface{ All() []calls.Call }

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
	onDevice := map[string][]string{} // device -> the hints that name it
	for _, st := range s.cfg.Hints.Snapshot() {
		if byUser && st.Exten != user && !slices.Contains(st.Providers, hints.ProviderKey(presence.Provider(user))) {
			continue
		}
		for _, d := range st.Devices {
			d = strings.ToLower(d) // Asterisk's device names ignore case
			onDevice[d] = append(onDevice[d], st.Key())
		}
	}
	out := []restCall{}
	for _, c := range s.cfg.Calls.All() {
		if hs, ok := onDevice[strings.ToLower(c.Device)]; ok {
			out = append(out, restCall{Call: c, Hints: hs})
		}
	}
	writeJSON(w, 200, map[string]any{"calls": out})
}
