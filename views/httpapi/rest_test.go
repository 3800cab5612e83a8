package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
)

// fakePresence keeps presence in a map; "pending" users answer pending.
type fakePresence struct{ vals map[string]presence.Value }

func (f *fakePresence) Get(u string) (presence.Value, bool) { v, ok := f.vals[u]; return v, ok }
func (f *fakePresence) Set(_ context.Context, u string, v presence.Value) (presence.Value, bool, error) {
	if err := v.Validate(); err != nil {
		return presence.Value{}, false, err
	}
	f.vals[u] = v
	return v, u == "pending", nil
}
func (f *fakePresence) Restore(_ context.Context, u string) (presence.Value, bool, error) {
	return presence.Value{}, false, presence.Errorf(presence.CodeNotFound, "nothing to restore")
}

func start(t *testing.T, tokens string) (string, *fakePresence) {
	t.Helper()
	tb := hints.NewTable()
	tb.Put(hints.Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001"}, Providers: []string{"CustomPresence:1001"}})
	toks, err := ParseTokens(tokens, nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakePresence{vals: map[string]presence.Value{"1001": {State: presence.Away}}}
	s := New(Config{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Tokens: toks, Hints: tb, Presence: fp, Log: zerolog.Nop(),
		Checks: []Check{{Name: "store", Problem: func() string { return "" }}}})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return "http://" + s.Addr().String(), fp
}

func do(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func code(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		return e["code"].(string)
	}
	return ""
}

const (
	readTok  = "read-token-0123456789"
	writeTok = "write-token-0123456789"
)

func TestREST(t *testing.T) {
	base, fp := start(t, "read:"+readTok+",write:"+writeTok)
	tests := []struct {
		method, path, token, body string
		status                    int
		code                      string
	}{
		{"GET", "/v1/hints", readTok, "", 200, ""},
		{"GET", "/v1/hints/1001@internal", readTok, "", 200, ""},
		{"GET", "/v1/hints/1001", readTok, "", 404, "NOT_FOUND"},
		{"GET", "/v1/hints/10%2001", readTok, "", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/presence/1001", readTok, "", 200, ""},
		{"GET", "/v1/presence/9999", readTok, "", 404, "NOT_FOUND"},
		{"GET", "/v1/presence/a,b", readTok, "", 400, "INVALID_USER"},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":"dnd","message":"in a meeting, room \"2\"","for":"30m"}`, 200, ""},
		{"PUT", "/v1/presence/pending", writeTok, `{"state":"away"}`, 202, ""},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":"busy"}`, 400, "INVALID_STATE"},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":"away","colour":"red"}`, 400, "INVALID_ARGUMENT"},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":`, 400, "INVALID_ARGUMENT"},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":"away"} {"state":"dnd"}`, 400, "INVALID_ARGUMENT"},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":"away","message":"` + strings.Repeat("x", 256) + `"}`, 400, "TOO_LONG"},
		{"PUT", "/v1/presence/1001", writeTok, `{"state":"away","for":"forever"}`, 400, "INVALID_ARGUMENT"},
		{"PUT", "/v1/presence/1001", readTok, `{"state":"away"}`, 403, "FORBIDDEN"},
		{"PUT", "/v1/presence/1001", "", `{"state":"away"}`, 401, "UNAUTHORIZED"},
		{"GET", "/v1/hints", "wrong-token-0123456789", "", 401, "UNAUTHORIZED"},
		{"POST", "/v1/presence/1001/restore", writeTok, "", 404, "NOT_FOUND"},
		{"GET", "/readyz", "", "", 401, "UNAUTHORIZED"},
		{"GET", "/v2/nothing", readTok, "", 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		st, m := do(t, tt.method, base+tt.path, tt.token, tt.body)
		if st != tt.status || code(m) != tt.code {
			t.Errorf("%s %s: %d %v; want %d %s", tt.method, tt.path, st, m, tt.status, tt.code)
		}
	}
	if v := fp.vals["1001"]; v.State != presence.DND || v.Message != `in a meeting, room "2"` || v.Expires.IsZero() {
		t.Fatalf("presence %+v", v)
	}
	// access_token is for event streams only (EventSource and WebSocket
	// cannot set headers): a URL is logged and kept in histories.
	if st, _ := do(t, "GET", base+"/v1/hints?access_token="+readTok, "", ""); st != 401 {
		t.Fatalf("access_token on a REST route: %d", st)
	}
	if st, _ := do(t, "GET", base+"/healthz", "", ""); st != 200 {
		t.Fatalf("healthz needs no token: %d", st)
	}
}

func TestOpenAPIWithoutTokensOnLoopbackOnly(t *testing.T) {
	base, _ := start(t, "")
	if st, _ := do(t, "GET", base+"/v1/hints", "", ""); st != 200 {
		t.Fatalf("open API on loopback: %d", st)
	}
	toks, _ := ParseTokens("", nil)
	s := New(Config{Addr: "0.0.0.0:0", Registry: prometheus.NewRegistry(), Tokens: toks, Log: zerolog.Nop()})
	if err := s.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Fatalf("open API on all interfaces: %v", err)
	}
}

func TestParseTokens(t *testing.T) {
	toks, err := ParseTokens("read:"+readTok, strings.NewReader("# comment\n\nadmin:admin-token-0123456789\n"))
	if err != nil || toks.Len() != 2 {
		t.Fatalf("%v %v", toks, err)
	}
	for _, bad := range []string{"read", "root:abcdefghijklmnopq", "read:short"} {
		if _, err := ParseTokens(bad, nil); err == nil {
			t.Errorf("ParseTokens(%q) accepted", bad)
		}
	}
}

func FuzzSetBody(f *testing.F) {
	f.Add(`{"state":"away","message":"x","for":"1h"}`)
	f.Add(`{"state":`)
	f.Add(`{"state":"away","STATE":"dnd"}`)
	f.Add(`{"state":"dnd","message":"\ud800"}`)
	f.Add("{\"state\":\"dnd\",\"message\":\"\xff\"}")
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("PUT", "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		var sr setRequest
		err := decode(req, &sr)
		if err != nil {
			if c := presence.ErrorCode(err); c != presence.CodeInvalidArgument && c != presence.CodeInvalidText {
				t.Fatalf("decode error code %v", err)
			}
			return
		}
		// What the strict decoder takes, the lenient one reads the same.
		var lax setRequest
		if err := json.Unmarshal([]byte(body), &lax); err != nil || lax != sr {
			t.Fatalf("strict %+v, encoding/json %+v (%v)", sr, lax, err)
		}
		if !utf8.ValidString(body) {
			t.Fatalf("invalid UTF-8 accepted: %q", body)
		}
	})
}
