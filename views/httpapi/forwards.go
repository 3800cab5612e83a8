package httpapi

import (
	"context"
	"net/http"

	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/presence"
)

// Forwards keeps the users' call forwards (*forward.Service).
type Forwards interface {
	Get(user string) forward.Forwards
	Set(ctx context.Context, user string, k forward.Kind, on bool, destination string) (forward.Forwards, error)
}

func hasForwards(s *Server) bool { return s.cfg.Forwards != nil }

func (s *Server) getForwards(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if err := presence.ValidateUser(user); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, forwardsFor(s.cfg.Forwards.Get(user), s.hidesParties(r, false)))
}

// forwardRequest is the body of PUT /v1/forwards/{user}/{kind}: enabled
// is required; an empty destination keeps the forward's.
type forwardRequest struct {
	Enabled     *bool  `json:"enabled"`
	Destination string `json:"destination"`
}

func (s *Server) setForward(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if err := presence.ValidateUser(user); err != nil {
		s.fail(w, err)
		return
	}
	k, err := forward.ParseKind(r.PathValue("kind"))
	if err != nil {
		s.fail(w, err)
		return
	}
	var req forwardRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, err)
		return
	}
	if req.Enabled == nil {
		s.fail(w, presence.Errorf(presence.CodeInvalidArgument, "the body needs \"enabled\" (true or false)"))
		return
	}
	f, err := s.cfg.Forwards.Set(r.Context(), user, k, *req.Enabled, req.Destination)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, f)
}
