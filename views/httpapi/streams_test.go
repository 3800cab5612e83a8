package httpapi

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/internal/testenv"
)

// A token removed at reload ends the streams it opened: its WebSocket
// stops reading and writing, its SSE stream ends; streams of tokens that
// stay are left alone, and one whose token lost its scope is closed too.
func TestReloadClosesStreams(t *testing.T) {
	const readTok, keepTok = "read-token-0123456789", "keep-token-0123456789"
	toks, err := ParseTokens("read:board:"+readTok+",write:crm:"+writeTok+",read:wall:"+keepTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, fp := startWith(t, Config{Tokens: toks})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	openSSE := func(tok string) *bufio.Reader {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr().String()+"/v1/events?all=1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("SSE with %s: %v %v", tok, resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil { // the snapshot's first line
			t.Fatal(err)
		}
		return br
	}
	sseRead, sseKeep := openSSE(readTok), openSSE(keepTok)
	ws, _, err := websocket.Dial(ctx, "ws://"+s.Addr().String()+"/v1/ws?access_token="+writeTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Both SSE streams and the WebSocket are known by their tokens.
	testenv.Eventually(t, "three streams tracked", func() bool {
		s.streams.mu.Lock()
		defer s.streams.mu.Unlock()
		return len(s.streams.by) == 3
	})
	// Reload: board's token removed, crm's lowered to read, wall's kept.
	next, err := ParseTokens("read:crm:"+writeTok+",read:wall:"+keepTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Tokens.Replace(next)
	if n := s.TokensChanged(); n != 2 {
		t.Fatalf("%d streams closed, want 2", n)
	}
	// The removed token's SSE stream ends.
	for {
		if _, err := sseRead.ReadString('\n'); err != nil {
			break
		}
	}
	// The WebSocket whose token lost the write scope is closed: a write
	// through it does nothing.
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"set","user":"1001","state":"dnd"}`))
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the WebSocket stayed open")
			}
			break
		}
	}
	if v, _ := fp.Get("1001"); v.State.String() != "away" {
		t.Fatalf("a write through a closed stream: %+v", v)
	}
	// The kept token's stream goes on.
	s.streams.mu.Lock()
	left := len(s.streams.by)
	s.streams.mu.Unlock()
	if left != 1 {
		t.Fatalf("%d streams tracked after the reload, want the kept one", left)
	}
	_ = sseKeep
}

type fakeForwards struct{ f forward.Forwards }

func (f fakeForwards) Get(string) forward.Forwards { return f.f }
func (f fakeForwards) Set(context.Context, string, forward.Kind, bool, string) (forward.Forwards, error) {
	return f.f, nil
}

// A "states" token (a wall board) sees whether forwards are on, never the
// numbers they go to: on REST, in SSE and WebSocket frames and snapshots.
func TestStatesTokenHidesForwardNumbers(t *testing.T) {
	const statesTok, readTok = "wallboard-token-0123456789", "crm-token-0123456789abcdef"
	toks, err := ParseTokens("states:wall:"+statesTok+",read:crm:"+readTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	fw := forward.Forwards{User: "1001", Unconditional: forward.Forward{Enabled: true, Destination: "0612345678"}, Busy: forward.Forward{Destination: "0699999999"}}
	s, _ := startWith(t, Config{Tokens: toks, Forwards: fakeForwards{fw}})
	for tok, want := range map[string]bool{statesTok: false, readTok: true} {
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/v1/forwards/1001", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Contains(string(body), "0612345678") || strings.Contains(string(body), "0699999999"); got != want || !strings.Contains(string(body), `"enabled":true`) {
			t.Errorf("GET with %s: %s", tok, body)
		}
	}
	ev := &watch.Event{Change: change.Change{Kind: forward.ChangeKind, Key: "1001", Value: fw}}
	for _, hide := range []bool{true, false} {
		for name, frame := range map[string]func(*watch.Event) []byte{"sse": sseFrame("e", hide), "ws": wsFrame("e", hide)} {
			b := string(frame(ev))
			if strings.Contains(b, "0612345678") == hide || !strings.Contains(b, `"enabled":true`) {
				t.Errorf("%s frame, hide %v: %s", name, hide, b)
			}
		}
	}
}

// A proxy named in PRESENCED_TRUSTED_PROXIES is never taken for a local
// client in open mode, forwarding headers or not; with tokens, the audit
// line names the client it forwards for, not what the client claims.
func TestTrustedProxies(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s, fp := startWith(t, Config{TrustedProxies: loop})
	if a := send(t, s, "PUT", "/v1/presence/1001", `{"state":"dnd"}`, "Content-Type", ctJSON); a.status != 403 || a.code != "PROXIED" {
		t.Fatalf("open mode through a named proxy without its headers: %+v", a)
	}
	if v, _ := fp.Get("1001"); v.State.String() != "away" {
		t.Fatal("the write went through")
	}
	toks, _ := ParseTokens("write:crm:"+writeTok, nil)
	var buf syncBuffer
	s, _ = startWith(t, Config{Tokens: toks, TrustedProxies: loop, Log: zerolog.New(&buf)})
	send(t, s, "PUT", "/v1/presence/1001", `{"state":"dnd"}`, "Content-Type", ctJSON, "Authorization", "Bearer "+writeTok,
		"X-Forwarded-For", "10.9.9.9, 192.0.2.44, 127.0.0.1")
	if log := buf.String(); !strings.Contains(log, `"remote":"192.0.2.44"`) {
		t.Fatalf("audit line: %s", log)
	}
}
