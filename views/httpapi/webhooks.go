package httpapi

import (
	"context"
	"net/http"

	"github.com/presenced/presenced/core/presence"
)

// Webhooks is what the API manages webhooks through. The API only shows
// what it gets back, as JSON; errors carry presence codes (INVALID_ARGUMENT,
// NOT_FOUND).
type Webhooks interface {
	// CreateWebhook reads the body with decode (strict: an unknown field
	// is an error), into the definition of a webhook it holds.
	CreateWebhook(ctx context.Context, decode func(v any) error) (created any, err error)
	ListWebhooks() any
	GetWebhook(id string) (any, bool)
	DeleteWebhook(ctx context.Context, id string) error
	TestWebhook(ctx context.Context, id string) (any, error)
}

func hasWebhooks(s *Server) bool { return s.cfg.Webhooks != nil }

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	created, err := s.cfg.Webhooks.CreateWebhook(r.Context(), func(v any) error { return decode(r, v) })
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

func (s *Server) listWebhooks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, struct {
		Webhooks any `json:"webhooks"`
	}{s.cfg.Webhooks.ListWebhooks()})
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	info, ok := s.cfg.Webhooks.GetWebhook(r.PathValue("id"))
	if !ok {
		writeError(w, 404, "NOT_FOUND", "no such webhook")
		return
	}
	writeJSON(w, 200, info)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Webhooks.DeleteWebhook(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) {
	// Limited per token: each test is a connection to an address of the
	// admin's choosing.
	_, token := s.tokenOf(r, false)
	if err := s.testLimit.Check(token, "webhook tests by "+token); err != nil {
		s.fail(w, presence.WrapError(presence.CodeRateLimited, err, err.Error()))
		return
	}
	res, err := s.cfg.Webhooks.TestWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, 200, res)
}
