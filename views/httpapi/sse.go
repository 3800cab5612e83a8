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

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/views/filter"
)

// Server-Sent Events: GET /v1/events?hints=1001@internal,1002&providers=CustomPresence:1001
// (or ?all=1). Every event has the id "<epoch>:<seq>"; a client that
// reconnects with Last-Event-ID (browsers do it by themselves) gets exactly
// what it missed, or, when that is no longer in the hub's history, a fresh
// snapshot marked "fresh":true.
//
//	event: snapshot   data: {"fresh":false,"hints":[...],"presence":[...]}
//	event: hint       data: {hint state}
//	event: presence   data: {"provider":"CustomPresence:1001","presence":{...},"invalid":false}
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
	for k := range q {
		if k != "all" && k != "hints" && k != "providers" && k != "devices" && k != "mailboxes" && k != "last_event_id" && k != "access_token" {
			writeError(w, 400, "INVALID_ARGUMENT", fmt.Sprintf("unknown parameter %q (all, hints, providers, devices, mailboxes, last_event_id, access_token)", clip.Clip(k)))
			return
		}
	}
	if a := q.Get("all"); a != "" && a != "1" && a != "true" && a != "0" && a != "false" {
		writeError(w, 400, "INVALID_ARGUMENT", "all is 1 or true (or 0, false)")
		return
	}
	f := filter.Spec{All: q.Get("all") == "1" || q.Get("all") == "true",
		Hints: splitList(q.Get("hints")), Providers: splitList(q.Get("providers")),
		Devices: splitList(q.Get("devices")), Mailboxes: splitList(q.Get("mailboxes"))}
	if err := f.Check(); err != nil {
		s.fail(w, err)
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
	hide := s.hidesParties(r, true)
	sub, snap := s.cfg.Hub.Subscribe(f.Watch(s.cfg.Hub.Site()), from)
	// The stream runs on the hijacked connection, without a goroutine of
	// its own: net/http lets go of the request, its buffers and its
	// goroutine, changes go out through a forwarder that runs only while
	// there are some, and keepalives come from a timer (sse_stream.go).
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		sub.Close()
		writeError(w, 500, "INTERNAL", "streaming unsupported")
		return
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n" +
		"X-Accel-Buffering: no\r\nConnection: close\r\n")
	// The front door's headers (CORS for an allowed origin, no framing)
	// were set on the ResponseWriter, which the hijack bypasses.
	_ = w.Header().Write(&head)
	head.WriteString("\r\n")
	if !snap.Resumed {
		body := struct {
			Fresh     bool                `json:"fresh"`
			Hints     []hints.State       `json:"hints"`
			Presence  []ssePresence       `json:"presence"`
			Mailboxes []voicemail.Count   `json:"mailboxes"`
			Calls     []calls.DeviceCalls `json:"calls"`
			Forwards  []forward.Forwards  `json:"forwards"`
		}{Fresh: snap.Fresh, Hints: []hints.State{}, Presence: []ssePresence{}, Mailboxes: []voicemail.Count{}, Calls: []calls.DeviceCalls{}, Forwards: []forward.Forwards{}}
		for _, ev := range snap.Items {
			switch val := ev.Value.(type) {
			case hints.State:
				body.Hints = append(body.Hints, val)
			case voicemail.Count:
				body.Mailboxes = append(body.Mailboxes, val)
			case calls.DeviceCalls:
				if len(val.Calls) > 0 { // devices without a call are not news
					body.Calls = append(body.Calls, callsFor(val, hide))
				}
			case forward.Forwards:
				body.Forwards = append(body.Forwards, forwardsFor(val, hide))
			case hints.ProviderPresence:
				body.Presence = append(body.Presence, ssePresence{ev.Key, val})
			}
		}
		writeSSE(&head, snap.Epoch, snap.Seq, "snapshot", body)
	}
	s.serveSSE(r, conn, sub, snap.Epoch, head.Bytes(), hide)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// sseFrame returns the builder of an event's SSE frame; hide: calls
// without their other party.
func sseFrame(epoch string, hide bool) func(*watch.Event) []byte {
	return func(ev *watch.Event) []byte {
		var b bytes.Buffer
		switch val := ev.Value.(type) {
		case hints.State:
			writeSSE(&b, epoch, ev.Seq, "hint", val)
		case voicemail.Count:
			writeSSE(&b, epoch, ev.Seq, "mailbox", val)
		case calls.DeviceCalls:
			writeSSE(&b, epoch, ev.Seq, "calls", callsFor(val, hide))
		case forward.Forwards:
			writeSSE(&b, epoch, ev.Seq, "forward", forwardsFor(val, hide))
		case calls.PhoneEvent:
			writeSSE(&b, epoch, ev.Seq, "phone", phoneFor(val, hide))
		case hints.ProviderPresence:
			writeSSE(&b, epoch, ev.Seq, "presence", ssePresence{ev.Key, val})
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
		return watch.Position{}, fmt.Errorf("the Last-Event-ID %q is not an id of this API (epoch:sequence)", clip.Clip(s))
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
