package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// servedDoc loads the OpenAPI document presenced serves, and checks it is
// a valid OpenAPI 3 document, with an operationId on every operation and a
// schema on every response that has a body.
func servedDoc(t *testing.T, base string) (*openapi3.T, routers.Router) {
	t.Helper()
	resp, err := http.Get(base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s %s: operationId %q missing or repeated", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
			for code, r := range op.Responses.Map() {
				if code == "101" || code == "204" {
					continue
				}
				if r.Value == nil || len(r.Value.Content) == 0 {
					t.Errorf("%s %s %s: no schema", method, path, code)
				}
				for ct, mt := range r.Value.Content {
					if mt.Schema == nil {
						t.Errorf("%s %s %s %s: no schema", method, path, code, ct)
					}
				}
			}
		}
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// Every answer presenced gives, successes and errors, matches the schema
// its document gives for it (kin-openapi validates requests and answers).
func TestServedResponsesMatchOpenAPI(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer target.Close()
	dir := writeTree(t, map[string]string{"extensions.conf": "[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\nexten => 1002,hint,PJSIP/1002\n",
		"users.csv": "1001,PJSIP/1001,Ann Lee\n"})
	m := openMain(t, t.TempDir(), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"), "PRESENCED_ROSTER="+filepath.Join(dir, "users.csv"),
		"PRESENCED_ARI_URL=", "PRESENCED_AMI_ADDR=")
	defer m.Close()
	base := "http://" + m.http.Addr().String()
	_, router := servedDoc(t, base)
	var webhookID string
	steps := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/v1/whoami", "", 200},
		{"GET", "/v1/roster", "", 200},
		{"GET", "/v1/hints", "", 200},
		{"GET", "/v1/hints/1002@internal", "", 200},
		{"GET", "/v1/hints/9999@internal", "", 404},
		{"GET", "/v1/hints/bad%20ref", "", 400},
		{"GET", "/v1/presence/1001", "", 404},
		{"PUT", "/v1/presence/1001", `{"state":"away","message":"lunch","for":"30m"}`, 202}, // no AMI: pending
		{"PUT", "/v1/presence/1001", `{"state":"nap"}`, 400},
		{"GET", "/v1/presence/1001", "", 200},
		{"GET", "/v1/presence", "", 200},
		{"POST", "/v1/presence/1001/restore", "", 202},
		{"POST", "/v1/presence/1001/restore", "", 404},
		{"POST", "/v1/webhooks", `{"url":"` + target.URL + `/in","all":true,"description":"crm"}`, 201},
		{"POST", "/v1/webhooks", `{"url":"http://169.254.169.254/","all":true}`, 400},
		{"GET", "/v1/webhooks", "", 200},
		{"GET", "/v1/webhooks/{id}", "", 200},
		{"POST", "/v1/webhooks/{id}/test", "", 200},
		{"DELETE", "/v1/webhooks/{id}", "", 204},
		{"GET", "/v1/webhooks/{id}", "", 404},
		{"GET", "/v1/events?hints=1001@internal", "", 200},
		{"GET", "/v1/events", "", 400},
	}
	for _, st := range steps {
		path := strings.Replace(st.path, "{id}", webhookID, 1)
		var body io.Reader = http.NoBody
		if st.body != "" {
			body = strings.NewReader(st.body)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, st.method, base+path, body)
		if st.method == "POST" || st.method == "PUT" {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: not in the document: %v", st.method, path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if st.status < 400 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s: the request does not match the document: %v", st.method, path, err)
			}
			if st.body != "" {
				req.Body = io.NopCloser(strings.NewReader(st.body))
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		opts := &openapi3filter.Options{IncludeResponseStatus: true}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			opts.ExcludeResponseBody = true
		} else {
			data, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != st.status {
			t.Errorf("%s %s: %d, want %d: %s", st.method, path, resp.StatusCode, st.status, data)
			continue
		}
		if strings.Contains(string(data), "null") {
			t.Errorf("%s %s: null in %s (lists are [])", st.method, path, data)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(data)), Options: opts}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s %d: the answer does not match the document: %v\n%s", st.method, path, resp.StatusCode, err, data)
		}
		if st.method == "POST" && path == "/v1/webhooks" && resp.StatusCode == 201 {
			_, rest, _ := strings.Cut(string(data), `"id":"`)
			webhookID, _, _ = strings.Cut(rest, `"`)
		}
	}
}
