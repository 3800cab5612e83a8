package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/presenced/presenced/hints"
	"github.com/presenced/presenced/watch"
)

// Server-Sent Events: GET /v1/events?hints=1001@internal,1002&providers=CustomPresence:1001
// (or ?all=1). Every event has the id "<epoch>:<seq>"; a client that
// reconnects with Last-Event-ID (browsers do it by themselves) gets exactly
// what it missed, or, when that is no longer in the hub's history, a fresh
// snapshot marked "fresh":true.
//
//	event: snapshot   data: {"fresh":false,"hints":[...],"presence":[...]}
//	event: hint       data: {hint state}
//	event: presence   data: {"provider":"customPresence:1001","presence":{...},"invalid":false}
//	event: error      data: {"code":"DROPPED","message":"..."} (then the stream ends)

// sseKeepalive is how often an idle stream gets a comment line, so that
// proxies keep it and a dead client is noticed.
const sseKeepalive = 15 * time.Second

type ssePresence struct {
	Provider string `json:"provider"`
	hints.ProviderPresence
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := watch.Filter{All: q.Get("all") == "1" || q.Get("all") == "true",
		Hints: splitList(q.Get("hints")), Providers: splitList(q.Get("providers"))}
	if !f.All && len(f.Hints) == 0 && len(f.Providers) == 0 {
		writeError(w, 400, "INVALID_ARGUMENT", "say what to watch: ?hints=exten@context,..., ?providers=CustomPresence:user,... or ?all=1")
		return
	}
	var from *watch.Position
	// The id may also come as ?last_event_id=, for a client that opens a
	// new EventSource (which cannot set the header) to resume.
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("last_event_id")
	}
	if last != "" {
		p, err := parsePosition(last)
		if err != nil {
			writeError(w, 400, "INVALID_ARGUMENT", err.Error())
			return
		}
		from = &p
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, 500, "INTERNAL", "streaming unsupported")
		return
	}
	sub, snap := s.cfg.Hub.Subscribe(f, from)
	defer sub.Close()
	s.sseStreams.Add(1)
	defer s.sseStreams.Add(-1)
	// A client that stops reading must not hold this goroutine for ever:
	// every write has a deadline, and a missed one ends the stream.
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(s.writeTimeout())) }
	deadline()
	stop := s.onDrop(sub, "sse", func() { _ = rc.SetWriteDeadline(time.Now()) })
	defer stop()
	frame := sseFrame(snap.Epoch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(200)
	if !snap.Resumed {
		body := struct {
			Fresh    bool          `json:"fresh"`
			Hints    []hints.State `json:"hints"`
			Presence []ssePresence `json:"presence"`
		}{Fresh: snap.Fresh, Hints: []hints.State{}, Presence: []ssePresence{}}
		for _, ev := range snap.Items {
			if ev.Kind == watch.KindHint {
				body.Hints = append(body.Hints, ev.Hint)
			} else {
				body.Presence = append(body.Presence, ssePresence{ev.Key, ev.Presence})
			}
		}
		writeSSE(w, snap.Epoch, snap.Seq, "snapshot", body)
	}
	fl.Flush()
	ctx := r.Context()
	for {
		evs, err := nextWithin(ctx, sub, sseKeepalive)
		switch {
		case err == errIdle:
			deadline()
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			continue
		case err != nil:
			if ctx.Err() == nil {
				writeSSE(w, "", 0, "error", map[string]string{"code": "DROPPED", "message": err.Error()})
				fl.Flush()
				// A dropped client is let go of: without this the
				// connection would stay open, idle, for keep-alive.
				if conn, _, err := rc.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			return
		}
		deadline()
		for _, ev := range evs {
			if _, err := w.Write(ev.Memo(memoSSE, frame)); err != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// sseFrame returns the builder of an event's SSE frame.
func sseFrame(epoch string) func(*watch.Event) []byte {
	return func(ev *watch.Event) []byte {
		var b bytes.Buffer
		if ev.Kind == watch.KindHint {
			writeSSE(&b, epoch, ev.Seq, "hint", ev.Hint)
		} else {
			writeSSE(&b, epoch, ev.Seq, "presence", ssePresence{ev.Key, ev.Presence})
		}
		return b.Bytes()
	}
}

func writeSSE(w io.Writer, epoch string, seq uint64, event string, v any) error {
	data, _ := json.Marshal(v)
	if epoch != "" {
		if _, err := fmt.Fprintf(w, "id: %s\n", id(epoch, seq)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
	return err
}

func parsePosition(s string) (watch.Position, error) {
	epoch, seq, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || epoch == "" {
		return watch.Position{}, fmt.Errorf("the Last-Event-ID %q is not an id of this API (epoch:sequence)", clipS(s))
	}
	return watch.Position{Epoch: epoch, Seq: n}, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func clipS(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
