package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/presence"
)

// testSpec is a webhook's definition as the API's clients send it.
type testSpec struct {
	URL         string   `json:"url"`
	Method      string   `json:"method,omitempty"`
	Secret      string   `json:"secret,omitempty"`
	Description string   `json:"description,omitempty"`
	All         bool     `json:"all,omitempty"`
	Hints       []string `json:"hints,omitempty"`
	Providers   []string `json:"providers,omitempty"`
	Bearer      string   `json:"bearer,omitempty"`
}

// fakeWebhooks keeps specs by id; URLs not starting with http are refused.
type fakeWebhooks struct{ specs map[string]testSpec }

func (f *fakeWebhooks) CreateWebhook(_ context.Context, decode func(any) error) (any, error) {
	var s testSpec
	if err := decode(&s); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s.URL, "http") {
		return nil, presence.Errorf(presence.CodeInvalidArgument, "webhook url: bad")
	}
	f.specs["wh_1"] = s
	return map[string]string{"id": "wh_1", "secret": "s"}, nil
}
func (f *fakeWebhooks) ListWebhooks() any { return f.specs }
func (f *fakeWebhooks) GetWebhook(id string) (any, bool) {
	s, ok := f.specs[id]
	return s, ok
}
func (f *fakeWebhooks) DeleteWebhook(_ context.Context, id string) error {
	if _, ok := f.specs[id]; !ok {
		return presence.Errorf(presence.CodeNotFound, "no webhook")
	}
	delete(f.specs, id)
	return nil
}
func (f *fakeWebhooks) TestWebhook(_ context.Context, id string) (any, error) {
	if _, ok := f.specs[id]; !ok {
		return nil, presence.Errorf(presence.CodeNotFound, "no webhook")
	}
	return map[string]bool{"delivered": true}, nil
}

func TestWebhookEndpoints(t *testing.T) {
	const adminTok = "admin-token-0123456789"
	toks, _ := ParseTokens("read:"+readTok+",write:"+writeTok+",admin:"+adminTok, nil)
	fw := &fakeWebhooks{specs: map[string]testSpec{}}
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Tokens: toks, Webhooks: fw, Log: zerolog.Nop()})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	tests := []struct {
		method, path, token, body string
		status                    int
		code                      string
	}{
		{"POST", "/v1/webhooks", adminTok, `{"url":"http://crm/x","all":true,"hints":["1001"]}`, 201, ""},
		{"POST", "/v1/webhooks", adminTok, `{"url":"ftp://crm/x","all":true}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/webhooks", adminTok, `{"url":"http://crm/x","target":"y"}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/webhooks", adminTok, `{"url":`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/webhooks", adminTok, `{"url":"http://a"}{}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/webhooks", writeTok, `{"url":"http://crm/x","all":true}`, 403, "FORBIDDEN"},
		{"GET", "/v1/webhooks", readTok, "", 403, "FORBIDDEN"},
		{"GET", "/v1/webhooks", "", "", 401, "UNAUTHORIZED"},
		{"GET", "/v1/webhooks", adminTok, "", 200, ""},
		{"GET", "/v1/webhooks/wh_1", adminTok, "", 200, ""},
		{"GET", "/v1/webhooks/wh_2", adminTok, "", 404, "NOT_FOUND"},
		{"POST", "/v1/webhooks/wh_1/test", adminTok, "", 200, ""},
		{"POST", "/v1/webhooks/wh_2/test", adminTok, "", 404, "NOT_FOUND"},
		{"DELETE", "/v1/webhooks/wh_1", writeTok, "", 403, "FORBIDDEN"},
		{"DELETE", "/v1/webhooks/wh_1", adminTok, "", 204, ""},
		{"DELETE", "/v1/webhooks/wh_1", adminTok, "", 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		st, m := do(t, tt.method, base+tt.path, tt.token, tt.body)
		if st != tt.status || code(m) != tt.code {
			t.Errorf("%s %s %s: %d %v; want %d %s", tt.method, tt.path, tt.body, st, m, tt.status, tt.code)
		}
	}
}
