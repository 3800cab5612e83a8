package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/views/filter"
)

// startWith starts a server of cfg (loopback, a fake presence with 1001
// away, one hint) and returns its address.
func startWith(t *testing.T, cfg Config) (*Server, *fakePresence) {
	t.Helper()
	tb := hints.NewTable()
	tb.Put(hints.Hint{Context: "internal", Exten: "1001", Devices: []string{"PJSIP/1001"}, Providers: []string{"CustomPresence:1001"}})
	fp := &fakePresence{vals: map[string]presence.Value{"1001": {State: presence.Away}}}
	// cfg.Log: the zero Logger writes nothing.
	cfg.Addr, cfg.Registry, cfg.Hints, cfg.Presence = "127.0.0.1:0", prometheus.NewRegistry(), tb, fp
	if cfg.Hub == nil {
		hub := watch.New(watch.Config{})
		if err := hub.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hub.Close() })
		cfg.Hub = hub
	}
	if cfg.Tokens == nil {
		cfg.Tokens, _ = ParseTokens("", nil)
	}
	s := New(cfg)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, fp
}

type answer struct {
	status int
	code   string
	header http.Header
}

func send(t *testing.T, s *Server, method, path, body string, hdr ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.Addr().String()+path, strings.NewReader(body))
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Error struct{ Code string } `json:"error"`
	}
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &m)
	return answer{resp.StatusCode, m.Error.Code, resp.Header}
}

const ctJSON = "application/json"

// In open mode nothing from a browser on another site, through a proxy or
// under a foreign Host name changes anything; a strict API refuses what
// the hooks refuse.
func TestFrontDoorOpenMode(t *testing.T) {
	fw := &fakeWebhooks{specs: map[string]testSpec{}}
	s, fp := startWith(t, Config{Origins: []string{"https://crm.example.com"}, Webhooks: fw})
	self := "http://" + s.Addr().String()
	set := `{"state":"dnd"}`
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"json write", "PUT", "/v1/presence/1001", `{"state":"away","message":"ok"}`, []string{"Content-Type", ctJSON}, 200, ""},
		{"json with charset", "PUT", "/v1/presence/1001", `{"state":"away"}`, []string{"Content-Type", "Application/JSON; charset=utf-8"}, 200, ""},
		{"text/plain write", "PUT", "/v1/presence/1001", set, []string{"Content-Type", "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"text/plain webhook", "POST", "/v1/webhooks", `{"url":"http://attacker.example/x","all":true}`, []string{"Content-Type", "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"cross-site webhook", "POST", "/v1/webhooks", `{"url":"http://attacker.example/x","all":true}`, []string{"Content-Type", "text/plain", "Origin", "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"},
		{"form post", "POST", "/v1/presence/1001/restore", "a=b", []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"},
		{"form post, no origin", "POST", "/v1/presence/1001/restore", "a=b", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"no content type", "POST", "/v1/presence/1001/restore", "", nil, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"cross-origin json", "PUT", "/v1/presence/1001", set, []string{"Content-Type", ctJSON, "Origin", "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"},
		{"origin null", "PUT", "/v1/presence/1001", set, []string{"Content-Type", ctJSON, "Origin", "null"}, 403, "ORIGIN_NOT_ALLOWED"},
		{"cross-origin read", "GET", "/v1/hints", "", []string{"Origin", "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"},
		{"same origin", "GET", "/v1/hints", "", []string{"Origin", self}, 200, ""},
		{"foreign host (rebinding)", "PUT", "/v1/presence/1001", set, []string{"Content-Type", ctJSON, "Host", "attacker.example:4574"}, 421, "HOST_NOT_ALLOWED"},
		{"foreign host read", "GET", "/v1/hints", "", []string{"Host", "attacker.example"}, 421, "HOST_NOT_ALLOWED"},
		{"localhost", "GET", "/v1/hints", "", []string{"Host", "localhost:4574"}, 200, ""},
		{"127.0.0.2", "GET", "/v1/hints", "", []string{"Host", "127.0.0.2"}, 200, ""},
		{"[::1]", "GET", "/v1/hints", "", []string{"Host", "[::1]:4574"}, 200, ""},
		{"x-forwarded-for", "PUT", "/v1/presence/1001", set, []string{"Content-Type", ctJSON, "X-Forwarded-For", "203.0.113.9"}, 403, "PROXIED"},
		{"forwarded", "GET", "/v1/hints", "", []string{"Forwarded", "for=203.0.113.9"}, 403, "PROXIED"},
		{"wrong method", "DELETE", "/v1/hints", "", nil, 405, "METHOD_NOT_ALLOWED"},
		{"wrong method 2", "POST", "/v1/presence/1001", set, []string{"Content-Type", ctJSON}, 405, "METHOD_NOT_ALLOWED"},
		{"no such path", "GET", "/v1/nothing", "", nil, 404, "NOT_FOUND"},
		{"20 KB body", "PUT", "/v1/presence/1001", `{"state":"dnd","message":"` + strings.Repeat("x", 20<<10) + `"}`, []string{"Content-Type", ctJSON}, 413, "TOO_LARGE"},
		{"GET with a body", "GET", "/v1/hints", "x", nil, 400, "INVALID_ARGUMENT"},
		{"keys match exactly", "PUT", "/v1/presence/1001", `{"state":"away","STATE":"dnd"}`, []string{"Content-Type", ctJSON}, 400, "INVALID_ARGUMENT"},
		{"other case only", "PUT", "/v1/presence/1001", `{"State":"dnd"}`, []string{"Content-Type", ctJSON}, 400, "INVALID_ARGUMENT"},
		{"duplicate key", "PUT", "/v1/presence/1001", `{"state":"away","state":"dnd"}`, []string{"Content-Type", ctJSON}, 400, "INVALID_ARGUMENT"},
		{"invalid UTF-8", "PUT", "/v1/presence/1001", "{\"state\":\"dnd\",\"message\":\"a\xffb\"}", []string{"Content-Type", ctJSON}, 400, "INVALID_TEXT"},
		{"lone surrogate", "PUT", "/v1/presence/1001", `{"state":"dnd","message":"a\ud800b"}`, []string{"Content-Type", ctJSON}, 400, "INVALID_TEXT"},
		{"lone low surrogate", "PUT", "/v1/presence/1001", `{"state":"dnd","message":"\uDC00"}`, []string{"Content-Type", ctJSON}, 400, "INVALID_TEXT"},
		{"unknown member", "PUT", "/v1/presence/1001", `{"state":"dnd","colour":"red"}`, []string{"Content-Type", ctJSON}, 400, "INVALID_ARGUMENT"},
		{"trailing data", "PUT", "/v1/presence/1001", `{"state":"dnd"} {}`, []string{"Content-Type", ctJSON}, 400, "INVALID_ARGUMENT"},
		{"not an object", "PUT", "/v1/presence/1001", `["dnd"]`, []string{"Content-Type", ctJSON}, 400, "INVALID_ARGUMENT"},
		{"sse bad hint", "GET", "/v1/events?hints=10%2001@internal", "", nil, 400, "INVALID_ARGUMENT"},
		{"sse bad provider", "GET", "/v1/events?providers=1001", "", nil, 400, "INVALID_ARGUMENT"},
		{"sse unknown parameter", "GET", "/v1/events?all=1&since=5", "", nil, 400, "INVALID_ARGUMENT"},
		{"sse all=yes", "GET", "/v1/events?all=yes", "", nil, 400, "INVALID_ARGUMENT"},
		{"sse too many", "GET", "/v1/events?hints=" + strings.TrimSuffix(strings.Repeat("1001,", filter.MaxRefs+1), ","), "", nil, 400, "INVALID_ARGUMENT"},
	}
	for _, tc := range tests {
		before := fp.vals["1001"]
		a := send(t, s, tc.method, tc.path, tc.body, tc.hdr...)
		if a.status != tc.status || a.code != tc.code {
			t.Errorf("%s: %d %s; want %d %s", tc.name, a.status, a.code, tc.status, tc.code)
		}
		if tc.status >= 400 && fp.vals["1001"] != before {
			t.Errorf("%s: refused, yet presence changed to %+v", tc.name, fp.vals["1001"])
		}
		if tc.status == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", tc.name)
		}
	}
	if len(fw.specs) != 0 {
		t.Errorf("a refused request created webhooks: %v", fw.specs)
	}
	if a := send(t, s, "DELETE", "/v1/hints", ""); a.header.Get("Allow") != "GET" {
		t.Errorf("Allow %q", a.header.Get("Allow"))
	}
	if a := send(t, s, "GET", "/", ""); a.header.Get("Content-Security-Policy") == "" || !strings.Contains(a.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || a.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the board may be framed: %v", a.header)
	}
	for _, reason := range []string{"host", "origin", "proxied", "content_type"} {
		if n := testutil.ToFloat64(s.refused.WithLabelValues(reason)); n == 0 {
			t.Errorf("refusals for %s not counted", reason)
		}
	}
}

// An allowed origin gets through a preflight, its requests and a
// WebSocket; another origin does not.
func TestAllowedOrigin(t *testing.T) {
	s, fp := startWith(t, Config{Origins: []string{"https://crm.example.com"}})
	pre := send(t, s, "OPTIONS", "/v1/presence/1001", "", "Origin", "https://crm.example.com", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "content-type,authorization")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://crm.example.com" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), "PUT") || !strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", pre.status, pre.header)
	}
	if a := send(t, s, "OPTIONS", "/v1/presence/1001", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "PUT"); a.status != 403 {
		t.Fatalf("preflight of another origin: %d", a.status)
	}
	a := send(t, s, "PUT", "/v1/presence/1001", `{"state":"dnd"}`, "Content-Type", ctJSON, "Origin", "https://crm.example.com")
	if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://crm.example.com" || fp.vals["1001"].State != presence.DND {
		t.Fatalf("allowed origin's write: %d %v", a.status, a.header)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws://" + s.Addr().String() + "/v1/ws"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://crm.example.com"}}})
	if err != nil {
		t.Fatalf("websocket from the allowed origin: %v", err)
	}
	c.CloseNow()
	if _, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("websocket from another origin: %v", err)
	}
}

// With tokens: the scheme in any case; access_token on event streams only.
func TestTokensStrict(t *testing.T) {
	toks, err := ParseTokens("read:"+readTok+",write:ops:"+writeTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := startWith(t, Config{Tokens: toks})
	for _, tc := range []struct {
		path, auth string
		status     int
	}{
		{"/v1/hints", "bearer " + readTok, 200},
		{"/v1/hints", "BEARER " + readTok, 200},
		{"/v1/hints", "Basic " + readTok, 401},
		{"/v1/hints?access_token=" + readTok, "", 401},
		{"/v1/events?all=1&access_token=nonsense-token-123", "", 401},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		if a := send(t, s, "GET", tc.path, "", hdr...); a.status != tc.status {
			t.Errorf("%s %q: %d, want %d", tc.path, tc.auth, a.status, tc.status)
		}
	}
	// A foreign Host is served with tokens (DNS rebinding gains nothing
	// without one), unless the admin lists hosts.
	if a := send(t, s, "GET", "/v1/hints", "", "Authorization", "Bearer "+readTok, "Host", "presence.example.com"); a.status != 200 {
		t.Errorf("host with tokens: %d", a.status)
	}
}

// A write is logged with the name of its token: the audit line.
func TestAuditLine(t *testing.T) {
	toks, _ := ParseTokens("write:crm:"+writeTok, nil)
	var buf syncBuffer
	s, _ := startWith(t, Config{Tokens: toks, Log: zerolog.New(&buf).Level(zerolog.InfoLevel)})
	send(t, s, "PUT", "/v1/presence/1001", `{"state":"dnd"}`, "Content-Type", ctJSON, "Authorization", "Bearer "+writeTok)
	send(t, s, "GET", "/v1/presence/1001", "", "Authorization", "Bearer "+writeTok)
	log := buf.String()
	if !strings.Contains(log, `"token":"crm"`) || !strings.Contains(log, `"method":"PUT"`) || !strings.Contains(log, `"status":200`) ||
		strings.Count(log, "api write") != 1 || strings.Contains(log, writeTok) {
		t.Fatalf("audit log:\n%s", log)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

func TestParseTokensNamed(t *testing.T) {
	toks, err := ParseTokens("admin:ops:"+adminTokFront+",read:"+readTok, strings.NewReader("write:crm:"+writeTok+"\n"))
	if err != nil || toks.Len() != 3 {
		t.Fatalf("%v %d", err, toks.Len())
	}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+writeTok)
	if sc, name := toks.scopeOf(r, false); sc != ScopeWrite || name != "crm" {
		t.Fatalf("%v %q", sc, name)
	}
	r.Header.Set("Authorization", "Bearer "+readTok)
	if _, name := toks.scopeOf(r, false); name != "read-1" {
		t.Fatalf("unnamed: %q", name)
	}
	for _, bad := range []string{
		"read:" + readTok + ",write:" + readTok,      // one token, two scopes
		"read:a:" + readTok + ",write:a:" + writeTok, // one name, two tokens
		"read:bad name:" + readTok,
		"read:short",
		"root:" + readTok,
	} {
		if _, err := ParseTokens(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseTokens("", strings.NewReader("\n# c\nread:"+readTok+"\nread:"+readTok+"\n")); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("file error: %v", err)
	}
}

const adminTokFront = "admin-token-front-0123"

// A body trickled a byte at a time is cut at the deadline; the
// connection cap answers 503 and counts.
func TestBodyDeadlineAndConnectionCap(t *testing.T) {
	s, _ := startWith(t, Config{BodyTimeout: 300 * time.Millisecond, MaxConns: 16})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "PUT /v1/presence/1001 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	done := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			done <- "closed: " + err.Error()
			return
		}
		done <- resp.Status
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
trickle:
	for {
		select {
		case st := <-done:
			if strings.HasPrefix(st, "200") {
				t.Fatalf("trickled body accepted: %s", st)
			}
			break trickle
		case <-tick.C:
			_, _ = c.Write([]byte(" "))
		case <-deadline:
			t.Fatal("a trickled body was never cut")
		}
	}
	// The cap: 16 connections held, the 17th answered 503. The trickled
	// connection is let go of first (the server closes its side after
	// answering).
	c.Close()
	lim := s.ln.(*limitListener)
	for lim.open.Load() != 0 {
		select {
		case <-deadline:
			t.Fatalf("%d connections still counted", lim.open.Load())
		case <-tick.C:
		}
	}
	var held []net.Conn
	for range 16 {
		h, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
		defer h.Close()
	}
	// The held ones are accepted before the extra one.
	for _, h := range held {
		_, _ = io.WriteString(h, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(h), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection: %v", err)
		}
	}
	extra, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("over the cap: %v %v", resp, err)
	}
	if n := testutil.ToFloat64(s.refused.WithLabelValues("connections")); n != 1 {
		t.Fatalf("refused connections counted %v", n)
	}
}

// WebSocket messages are as strict as bodies: a set with a member it does
// not have is refused, and not executed.
func TestWebSocketStrict(t *testing.T) {
	s, fp := startWith(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, tc := range []struct{ msg, code string }{
		{`{"type":"set","user":"1001","state":"dnd","colour":"red"}`, "INVALID_ARGUMENT"},
		{`{"type":"set","user":"1001","state":"away","STATE":"dnd"}`, "INVALID_ARGUMENT"},
		{`{"type":"set","user":"1001","state":"dnd","state":"dnd"}`, "INVALID_ARGUMENT"},
		{`{"type":"set","user":"1001","state":"dnd","message":"\ud800"}`, "INVALID_TEXT"},
		{`{"type":"ping","user":"1001"}`, "INVALID_ARGUMENT"},
		{`{"type":"subscribe","hints":["10 01"]}`, "INVALID_ARGUMENT"},
		{`{"type":"subscribe","providers":["nocolon"]}`, "INVALID_ARGUMENT"},
		{`{"type":"nap"}`, "INVALID_ARGUMENT"},
		{`not json`, "INVALID_ARGUMENT"},
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Type, Code string }
		_ = json.Unmarshal(data, &out)
		if out.Type != "error" || out.Code != tc.code {
			t.Errorf("%s: %s; want error %s", tc.msg, data, tc.code)
		}
	}
	if fp.vals["1001"].State != presence.Away {
		t.Fatalf("a refused message changed presence: %+v", fp.vals["1001"])
	}
	// An empty snapshot has [] for its lists.
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","providers":["CustomPresence:9999"]}`))
	_, data, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(data), `"hints":[]`) || !strings.Contains(string(data), `"presence":[]`) {
		t.Fatalf("snapshot %s %v", data, err)
	}
}

// A WebSocket message is read strictly or refused with a code; what is
// read reads the same again.
func FuzzWSMessage(f *testing.F) {
	for _, m := range []string{`{"type":"ping"}`, `{"type":"subscribe","hints":["1001@internal"],"from":"a:1"}`,
		`{"type":"set","user":"1001","state":"away","message":"x","for":"1h"}`, `{"type":"set","user":"1","STATE":"x"}`, `not json`} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := readIn(data)
		if err != nil {
			if c := presence.ErrorCode(err); c != presence.CodeInvalidArgument && c != presence.CodeInvalidText {
				t.Fatalf("code %v", err)
			}
			return
		}
		switch in.Type {
		case "ping", "unsubscribe", "subscribe", "set":
		default:
			t.Fatalf("type %q accepted", in.Type)
		}
		if !utf8.Valid(data) {
			t.Fatalf("invalid UTF-8 accepted")
		}
	})
}

// Token lists parse or are refused; a parsed token is found with its scope.
func FuzzParseTokens(f *testing.F) {
	f.Add("read:" + readTok + ",write:crm:" + writeTok)
	f.Add("admin:a:b:c-0123456789abcdef")
	f.Fuzz(func(t *testing.T, list string) {
		toks, err := ParseTokens(list, nil)
		if err != nil {
			return
		}
		for _, e := range strings.Split(list, ",") {
			parts := strings.SplitN(strings.TrimSpace(e), ":", 3)
			if len(parts) < 2 {
				continue
			}
			tok := strings.TrimSpace(parts[len(parts)-1])
			if strings.TrimSpace(tok) == "" || strings.ContainsAny(tok, " \t") {
				continue
			}
			r, _ := http.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			if sc, name := toks.scopeOf(r, false); sc == 0 || name == "" {
				t.Fatalf("token %q of %q not found", tok, list)
			}
		}
	})
}

// What the front door costs a request (in memory, no network), against
// the handler alone.
func benchFront(b *testing.B, wrap bool) {
	s := New(Config{Origins: []string{"https://crm.example.com"}})
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"reason"})
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	if wrap {
		h = s.front(h)
	}
	req := httptest.NewRequest("PUT", "http://127.0.0.1:4574/v1/presence/1001", strings.NewReader(`{"state":"away"}`))
	req.Header.Set("Content-Type", ctJSON)
	req.Header.Set("Origin", "https://crm.example.com")
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkFrontDoor(b *testing.B)         { benchFront(b, true) }
func BenchmarkFrontDoorBaseline(b *testing.B) { benchFront(b, false) }

// net/http's own messages go to presenced's log, as JSON.
func TestServerErrorLog(t *testing.T) {
	var buf syncBuffer
	s, _ := startWith(t, Config{Log: zerolog.New(&buf)})
	s.srv.ErrorLog.Printf("http: panic serving 127.0.0.1:5555: boom")
	var line struct{ Level, Message, Error string }
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil || line.Level != "warn" || line.Message != "http server" ||
		!strings.Contains(line.Error, "panic serving") {
		t.Fatalf("%q: %v", buf.String(), err)
	}
}

// A request refused at the door has its connection closed after the
// answer, its body unread: clients trickling bodies the door refuses
// cannot hold every connection (the cap) and starve /healthz.
func TestRefusedBodiesLetGo(t *testing.T) {
	const cap = 8
	s, _ := startWith(t, Config{BodyTimeout: time.Minute, MaxConns: cap})
	for _, req := range []string{
		"POST /v1/presence/1001/restore HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n{",
		"PUT /v1/presence/1001 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
		"PUT /v1/presence/1001 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nOrigin: https://evil.example\r\nContent-Length: 1000\r\n\r\n{",
		"GET /v1/hints HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{",
	} {
		var held []net.Conn
		for range cap {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			held = append(held, c)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range held {
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode < 400 {
				t.Fatalf("%q: %v %v", req[:20], resp, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			// The server closes its side: the trickle goes nowhere.
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = br.ReadByte()
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%q: the connection was kept after the refusal (%v)", req[:20], err)
			}
		}
		// Every trickling client still holds its socket; the server has
		// let go of them all.
		lim := s.ln.(*limitListener)
		http.DefaultClient.CloseIdleConnections() // the last /healthz's
		testenv.Eventually(t, fmt.Sprintf("%q: refused connections let go", req[:20]), func() bool { return lim.open.Load() == 0 })
		if a := send(t, s, "GET", "/healthz", ""); a.status != 200 {
			t.Fatalf("/healthz with %d refused clients trickling: %d", cap, a.status)
		}
	}
}

// A node cut off from its cluster says so on every answer (a header a
// web app of another origin may read) and in what it lists, and only
// then.
func TestStaleWhileCutOff(t *testing.T) {
	var mu sync.Mutex
	var since time.Time
	s, _ := startWith(t, Config{Origins: []string{"https://crm.example.com"}, Stale: func() (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		return since, !since.IsZero()
	}})
	read := func(path string) (http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+path, nil)
		req.Header.Set("Origin", "https://crm.example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		return resp.Header, body
	}
	paths := []string{"/v1/presence/1001", "/v1/presence", "/v1/hints"}
	for _, p := range paths {
		if h, body := read(p); h.Get(StaleHeader) != "" || body["stale"] != nil {
			t.Fatalf("%s while connected: %q %v", p, h.Get(StaleHeader), body["stale"])
		}
	}
	mu.Lock()
	since = time.Date(2026, 12, 7, 9, 15, 0, 0, time.UTC)
	mu.Unlock()
	for _, p := range paths {
		h, body := read(p)
		if got := h.Get(StaleHeader); !strings.HasPrefix(got, "cut off from the cluster since 2026-12-07T09:15:00Z") ||
			body["stale"] != true || !strings.Contains(h.Get("Access-Control-Expose-Headers"), StaleHeader) {
			t.Fatalf("%s while cut off: %q %v (exposed: %q)", p, got, body["stale"], h.Get("Access-Control-Expose-Headers"))
		}
	}
}

// In a cluster of several sites, the hints list has this site's hints
// (from its table), then the other sites' (from the change log), each
// with its site; ?site= narrows it, and one hint of another site is read
// with ?site=.
func TestOtherSitesHints(t *testing.T) {
	hub := watch.New(watch.Config{Site: "lyon"})
	if err := hub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Close() })
	paris := hints.State{Hint: hints.Hint{Site: "paris", Context: "internal", Exten: "2001"}, Extension: hints.ExtInUse}
	gone := hints.State{Hint: hints.Hint{Site: "paris", Context: "internal", Exten: "2002"}, Removed: true}
	for _, st := range []hints.State{paris, gone} {
		hub.Append(change.Change{Kind: hints.KindHint, Key: st.Key(), Value: st})
	}
	s, _ := startWith(t, Config{Hub: hub})
	list := func(query string) string {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr().String() + "/v1/hints" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Hints []hints.State }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, st := range body.Hints {
			keys = append(keys, st.Key()+" "+st.Extension.String())
		}
		return strings.Join(keys, ", ")
	}
	for query, want := range map[string]string{
		"":                  "1001@internal Idle, paris/2001@internal InUse",
		"?site=paris":       "paris/2001@internal InUse",
		"?site=lyon":        "1001@internal Idle",
		"?context=other":    "",
		"?site=nowhere":     "",
		"?context=internal": "1001@internal Idle, paris/2001@internal InUse",
	} {
		if got := list(query); got != want {
			t.Errorf("GET /v1/hints%s: %q, want %q", query, got, want)
		}
	}
	if a := send(t, s, "GET", "/v1/hints/2001@internal?site=paris", ""); a.status != 200 {
		t.Fatalf("another site's hint: %d %s", a.status, a.code)
	}
	for _, ref := range []string{"/v1/hints/2002@internal?site=paris", "/v1/hints/2001@internal?site=nowhere", "/v1/hints/2001@internal"} {
		if a := send(t, s, "GET", ref, ""); a.status != 404 {
			t.Errorf("%s: %d", ref, a.status)
		}
	}
}
