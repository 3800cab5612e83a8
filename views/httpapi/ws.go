package httpapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/views/filter"
)

// WebSocket: GET /v1/ws (read scope; set needs write). Messages are JSON
// objects with a "type".
//
// Client to server:
//
//	{"type":"subscribe","hints":["1001@internal"],"providers":["CustomPresence:1001"],"all":false,"from":"<epoch>:<seq>"}
//	{"type":"unsubscribe"}
//	{"type":"set","user":"1001","state":"away","subtype":"","message":"Lunch","for":"30m"}
//	{"type":"setForward","user":"1001","kind":"busy","enabled":true,"destination":"0612345678"}
//	{"type":"ping"}
//
// Server to client:
//
//	{"type":"snapshot","id":"<epoch>:<seq>","fresh":false,"hints":[...],"presence":[...]}
//	{"type":"hint","id":"<epoch>:<seq>","hint":{...}}
//	{"type":"presence","id":"<epoch>:<seq>","provider":"CustomPresence:1001","presence":{...}}
//	{"type":"set","user":"1001","presence":{...},"pending":false}
//	{"type":"forward","id":"<epoch>:<seq>","forward":{"user":"1001","unconditional":{...},"busy":{...},"noanswer":{...}}}
//	{"type":"setForward","forward":{...the user's forwards after the change...}}
//	{"type":"pong"}
//	{"type":"error","code":"INVALID_STATE","message":"..."}
//
// A subscribe replaces the previous subscription; with "from" it resumes
// as SSE does. A subscriber the hub drops for being hopelessly behind gets
// a DROPPED error, then the connection is closed (status 1013). The
// server pings every 30 s and closes a connection whose client does not
// answer.

// wsIn is a client's message; each type has its own members, and a
// member of another type is refused (readIn).
type wsIn struct {
	Type      string   `json:"type"`
	Hints     []string `json:"hints"`
	Providers []string `json:"providers"`
	Devices   []string `json:"devices"`
	Mailboxes []string `json:"mailboxes"`
	All       bool     `json:"all"`
	From      string   `json:"from"`
	User      string   `json:"user"`
	State     string   `json:"state"`
	Subtype   string   `json:"subtype"`
	Message   string   `json:"message"`
	For       string   `json:"for"`
	// setForward
	Kind        string `json:"kind"`
	Enabled     *bool  `json:"enabled"`
	Destination string `json:"destination"`
}

type (
	wsBare struct {
		Type string `json:"type"`
	}
	wsSubscribe struct {
		Type      string   `json:"type"`
		Hints     []string `json:"hints"`
		Providers []string `json:"providers"`
		Devices   []string `json:"devices"`
		Mailboxes []string `json:"mailboxes"`
		All       bool     `json:"all"`
		From      string   `json:"from"`
	}
	wsSet struct {
		Type    string `json:"type"`
		User    string `json:"user"`
		State   string `json:"state"`
		Subtype string `json:"subtype"`
		Message string `json:"message"`
		For     string `json:"for"`
	}
	wsSetForward struct {
		Type        string `json:"type"`
		User        string `json:"user"`
		Kind        string `json:"kind"`
		Enabled     *bool  `json:"enabled"`
		Destination string `json:"destination"`
	}
)

// readIn decodes a client's message strictly (strict.go), with the
// members of its type only.
func readIn(data []byte) (wsIn, error) {
	var peek struct {
		Type string `json:"type"`
	}
	if err := jsonv2.Unmarshal(data, &peek); err != nil {
		return wsIn{}, jsonError(err)
	}
	var in wsIn
	switch peek.Type {
	case "ping", "unsubscribe":
		var m wsBare
		if err := strictUnmarshal(data, &m); err != nil {
			return wsIn{}, err
		}
		in.Type = m.Type
	case "subscribe":
		var m wsSubscribe
		if err := strictUnmarshal(data, &m); err != nil {
			return wsIn{}, err
		}
		in = wsIn{Type: m.Type, Hints: m.Hints, Providers: m.Providers, Devices: m.Devices, Mailboxes: m.Mailboxes, All: m.All, From: m.From}
	case "set":
		var m wsSet
		if err := strictUnmarshal(data, &m); err != nil {
			return wsIn{}, err
		}
		in = wsIn{Type: m.Type, User: m.User, State: m.State, Subtype: m.Subtype, Message: m.Message, For: m.For}
	case "setForward":
		var m wsSetForward
		if err := strictUnmarshal(data, &m); err != nil {
			return wsIn{}, err
		}
		in = wsIn{Type: m.Type, User: m.User, Kind: m.Kind, Enabled: m.Enabled, Destination: m.Destination}
	default:
		return wsIn{}, presence.Errorf(presence.CodeInvalidArgument, "unknown message type %q (subscribe, unsubscribe, set, setForward, ping)", clip.Clip(peek.Type))
	}
	return in, nil
}

type wsOut struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	Fresh bool   `json:"fresh,omitempty"`
	// A snapshot's lists are [] when empty: []hints.State and
	// []ssePresence in an any, which omitempty keeps.
	Hints     any               `json:"hints,omitempty"`
	Presence  any               `json:"presence,omitempty"`
	Mailboxes any               `json:"mailboxes,omitempty"`
	Mailbox   *voicemail.Count  `json:"mailbox,omitempty"`
	Calls     any               `json:"calls,omitempty"`
	Forwards  any               `json:"forwards,omitempty"`
	Forward   *forward.Forwards `json:"forward,omitempty"`
	Phone     *calls.PhoneEvent `json:"phone,omitempty"`
	Device    string            `json:"device,omitempty"`
	Site      string            `json:"site,omitempty"`
	Hint      *hints.State      `json:"hint,omitempty"`
	Provider  string            `json:"provider,omitempty"`
	Invalid   bool              `json:"invalid,omitempty"`
	User      string            `json:"user,omitempty"`
	Pending   bool              `json:"pending,omitempty"`
	Code      string            `json:"code,omitempty"`
	Text      string            `json:"message,omitempty"`
}

const (
	wsPing      = 30 * time.Second
	wsWriteWait = 10 * time.Second
	wsMaxIn     = 16 << 10
)

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	scope, name := s.tokenOf(r, true)
	cw := &lockingWriter{ResponseWriter: w}
	// front.go has refused an origin that is neither this server's nor
	// allowed; the library checks again, by host.
	c, err := websocket.Accept(cw, r, &websocket.AcceptOptions{OriginPatterns: s.originHosts()})
	if err != nil {
		return
	}
	c.SetReadLimit(wsMaxIn)
	// The connection is hijacked: it runs on a goroutine of its own and the
	// handler returns, so that net/http lets go of the request, its
	// buffers and its (deep) goroutine for as long as the watcher stays.
	// s.base ends it when the server closes.
	conn := &wsConn{s: s, c: c, scope: scope, token: name, raw: cw.conn, hide: s.hidesParties(r, true), remote: s.clientAddr(r)}
	conn.untrack = s.track(r, func() { _ = c.CloseNow() })
	s.wsStreams.Add(1)
	go conn.serve()
}

// serve reads the client's messages until the connection ends.
func (w *wsConn) serve() {
	s, c := w.s, w.c
	defer s.wsStreams.Add(-1)
	defer w.untrack()
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(actor.With(s.base, actor.Actor{Door: "ws", Name: w.token, Remote: w.remote}))
	defer cancel()
	defer w.unsubscribe()
	// Keep the connection honest: a ping every wsPing, from a timer rather
	// than a goroutine per connection; a client that does not answer is
	// closed (cancel ends the read below).
	p := &pinger{}
	p.start(wsPing, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, wsWriteWait)
		defer pcancel()
		if c.Ping(pctx) != nil {
			cancel()
			return false
		}
		return true
	})
	defer p.stop()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		in, err := readIn(data)
		if err != nil {
			w.send(ctx, wsOut{Type: "error", Code: string(presence.ErrorCode(err)), Text: presence.ErrorMessage(err)})
			continue
		}
		w.handle(ctx, in)
	}
}

// wsConn is one WebSocket client; its subscription is forwarded by a
// goroutine of its own.
type wsConn struct {
	s        *Server
	c        *websocket.Conn
	raw      *lockedConn
	scope    Scope
	token    string // the token's name, for the audit line
	remote   string // the client's address, for the audit line
	untrack  func() // forgets the stream (streams.go)
	hide     bool   // calls without their other party (scope "states")
	wmu      sync.Mutex
	mu       sync.Mutex
	sub      *watch.Sub
	fw       *forwarder
	stopDrop func()
}

func (w *wsConn) send(ctx context.Context, m wsOut) {
	data, _ := json.Marshal(m)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, w.s.writeTimeout())
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, data); err != nil {
		// A client that stops reading is closed; its read loop then ends
		// and frees the subscription.
		_ = w.c.CloseNow()
	}
}

func (w *wsConn) handle(ctx context.Context, in wsIn) {
	switch in.Type {
	case "ping":
		w.send(ctx, wsOut{Type: "pong"})
	case "subscribe":
		w.subscribe(ctx, in)
	case "unsubscribe":
		w.unsubscribe()
	case "set":
		w.write(ctx, in, w.s.cfg.Presence != nil, "presence cannot be set here", func() (wsOut, error) {
			got, pending, err := w.set(ctx, in)
			return wsOut{Type: "set", User: in.User, Presence: got, Pending: pending}, err
		})
	case "setForward":
		w.write(ctx, in, w.s.cfg.Forwards != nil, "forwards cannot be set here", func() (wsOut, error) {
			f, err := w.setForward(ctx, in)
			return wsOut{Type: "setForward", Forward: &f}, err
		})
	}
}

// write runs one write message: refused without the write scope or where
// the API has nothing to write to (served false), written in the audit
// log, answered with do's message or the error.
func (w *wsConn) write(ctx context.Context, in wsIn, served bool, notServed string, do func() (wsOut, error)) {
	if w.scope < ScopeWrite {
		w.send(ctx, wsOut{Type: "error", Code: "FORBIDDEN", Text: "the token's scope does not allow this"})
		return
	}
	if !served {
		w.send(ctx, wsOut{Type: "error", Code: "NOT_FOUND", Text: notServed})
		return
	}
	out, err := do()
	w.s.cfg.Log.Info().Str("token", w.token).Str("method", "WS").Str("path", "/v1/ws "+in.Type).Str("user", in.User).
		Str("result", string(presence.ErrorCode(err))).Msg("api write")
	if err != nil {
		w.send(ctx, wsOut{Type: "error", Code: string(presence.ErrorCode(err)), Text: presence.ErrorMessage(err)})
		return
	}
	w.send(ctx, out)
}

func (w *wsConn) setForward(ctx context.Context, in wsIn) (forward.Forwards, error) {
	if err := presence.ValidateUser(in.User); err != nil {
		return forward.Forwards{}, err
	}
	k, err := forward.ParseKind(in.Kind)
	if err != nil {
		return forward.Forwards{}, err
	}
	if in.Enabled == nil {
		return forward.Forwards{}, presence.Errorf(presence.CodeInvalidArgument, "setForward needs \"enabled\" (true or false)")
	}
	return w.s.cfg.Forwards.Set(ctx, in.User, k, *in.Enabled, in.Destination)
}

func (w *wsConn) set(ctx context.Context, in wsIn) (presence.Value, bool, error) {
	if err := presence.ValidateUser(in.User); err != nil {
		return presence.Value{}, false, err
	}
	st, err := presence.ParseState(in.State)
	if err != nil {
		return presence.Value{}, false, err
	}
	v := presence.Value{State: st, Subtype: in.Subtype, Message: in.Message}
	if in.For != "" {
		d, err := presence.ParseFor(in.For)
		if err != nil {
			return presence.Value{}, false, err
		}
		v.Expires = time.Now().Add(d)
	}
	return w.s.cfg.Presence.Set(ctx, in.User, v)
}

func (w *wsConn) subscribe(ctx context.Context, in wsIn) {
	f := filter.Spec{All: in.All, Hints: in.Hints, Providers: in.Providers, Devices: in.Devices, Mailboxes: in.Mailboxes}
	if err := f.Check(); err != nil {
		w.send(ctx, wsOut{Type: "error", Code: string(presence.ErrorCode(err)), Text: presence.ErrorMessage(err)})
		return
	}
	var from *watch.Position
	if in.From != "" {
		p, err := parsePosition(in.From)
		if err != nil {
			w.send(ctx, wsOut{Type: "error", Code: "INVALID_ARGUMENT", Text: err.Error()})
			return
		}
		from = &p
	}
	w.unsubscribe()
	sub, snap := w.s.cfg.Hub.Subscribe(f.Watch(w.s.cfg.Hub.Site()), from)
	frame := wsFrame(snap.Epoch, w.hide)
	fw := &forwarder{sub: sub, ctx: ctx,
		deliver: func(evs []*watch.Event) bool { return w.sendEvents(evs, frame) },
		dropped: func(err error) {
			// Tell the client why, and let go of it: a client this far
			// behind is best served by reconnecting with "from". A client
			// that does not read at all is cut by onDrop.
			w.send(ctx, wsOut{Type: "error", Code: "DROPPED", Text: err.Error()})
			_ = w.c.Close(websocket.StatusTryAgainLater, "dropped: hopelessly behind")
		}}
	stopDrop := w.s.onDrop(sub, "websocket", func() { _ = w.c.CloseNow() })
	w.mu.Lock()
	w.sub, w.fw, w.stopDrop = sub, fw, stopDrop
	w.mu.Unlock()
	if !snap.Resumed {
		out := wsOut{Type: "snapshot", ID: id(snap.Epoch, snap.Seq), Fresh: snap.Fresh}
		hs, ps, ms, cs, fs := []hints.State{}, []ssePresence{}, []voicemail.Count{}, []calls.DeviceCalls{}, []forward.Forwards{}
		for _, ev := range snap.Items {
			switch val := ev.Value.(type) {
			case hints.State:
				hs = append(hs, val)
			case voicemail.Count:
				ms = append(ms, val)
			case calls.DeviceCalls:
				if len(val.Calls) > 0 {
					cs = append(cs, callsFor(val, w.hide))
				}
			case forward.Forwards:
				fs = append(fs, forwardsFor(val, w.hide))
			case hints.ProviderPresence:
				ps = append(ps, ssePresence{ev.Key, val})
			}
		}
		out.Hints, out.Presence, out.Mailboxes, out.Calls, out.Forwards = hs, ps, ms, cs, fs
		w.send(ctx, out)
	}
	fw.start()
}

// sendEvents writes a batch of events in one system call (wsframe.go);
// false when the client is gone (then it is closed, and its read loop
// ends). There is no deadline per write: a client that stops reading is
// still let go of, as the next ping cannot be written and its timeout
// closes the connection, and the hub drops it when it stays hopelessly
// behind.
func (w *wsConn) sendEvents(evs []*watch.Event, frame func(*watch.Event) []byte) bool {
	frames := make(net.Buffers, len(evs))
	for i, ev := range evs {
		frames[i] = ev.Memo(memoSlot(memoWS, w.hide), frame)
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.raw.writeFrames(frames) != nil {
		_ = w.c.CloseNow()
		return false
	}
	return true
}

// wsFrame returns the builder of an event's WebSocket frame; hide: calls
// without their other party.
func wsFrame(epoch string, hide bool) func(*watch.Event) []byte {
	return func(ev *watch.Event) []byte {
		var m wsOut
		switch val := ev.Value.(type) {
		case hints.ProviderPresence:
			m = wsOut{Type: "presence", ID: id(epoch, ev.Seq), Provider: ev.Key, Presence: val.Value, Invalid: val.Invalid}
		case hints.State:
			m = wsOut{Type: "hint", ID: id(epoch, ev.Seq), Hint: &val}
		case voicemail.Count:
			m = wsOut{Type: "mailbox", ID: id(epoch, ev.Seq), Mailbox: &val}
		case calls.DeviceCalls:
			m = wsOut{Type: "calls", ID: id(epoch, ev.Seq), Device: val.Device, Site: val.Site, Calls: callsFor(val, hide).Calls}
		case forward.Forwards:
			f := forwardsFor(val, hide)
			m = wsOut{Type: "forward", ID: id(epoch, ev.Seq), Forward: &f}
		case calls.PhoneEvent:
			e := phoneFor(val, hide)
			m = wsOut{Type: "phone", ID: id(epoch, ev.Seq), Phone: &e}
		default:
			return nil // a kind this door does not show
		}
		b, _ := json.Marshal(m)
		return textFrame(b)
	}
}

// unsubscribe ends the subscription and waits for its forwarder, so
// that nothing of it is sent after.
func (w *wsConn) unsubscribe() {
	w.mu.Lock()
	sub, fw, stopDrop := w.sub, w.fw, w.stopDrop
	w.sub, w.fw, w.stopDrop = nil, nil, nil
	w.mu.Unlock()
	if sub != nil {
		sub.Close()
		fw.wg.Wait()
		stopDrop()
	}
}

func id(epoch string, seq uint64) string {
	return epoch + ":" + itoa(seq)
}

// pinger calls ping every interval, from a timer, until ping returns false
// or stop is called.
type pinger struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (p *pinger) start(every time.Duration, ping func() bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t = time.AfterFunc(every, func() {
		if !ping() {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.stopped {
			p.t.Reset(every)
		}
	})
}

func (p *pinger) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.t != nil {
		p.t.Stop()
	}
}
