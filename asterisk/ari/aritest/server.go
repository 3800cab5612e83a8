// Package aritest is a fake Asterisk REST Interface for tests. It accepts
// only the requests of Contract and answers with the status codes and
// bodies a real Asterisk 22 gives (BEHAVIOUR.md 4.1 to 4.4 and 4.10):
// 401 with its realm, 404 "Resource not found" for an unescaped "/" in a
// device name, 409 for devices it does not control, 500 "Unknown device"
// for a state it does not know, 422 for an event source it cannot find or
// was not subscribed to. Events go to applications over the websocket in
// the recorded JSON shape. It can drop websockets (subscriptions survive),
// restart (applications and subscriptions are forgotten, the startup time
// changes), and change device states while nobody listens.
package aritest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/internal/astemu"
)

// EntityID is the asterisk_id of the fake, as recorded.
const EntityID = "02:fc:00:00:00:01"

var deviceStates = []string{"UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE", "ONHOLD"}

// Server is a fake ARI on loopback.
type Server struct {
	Ast *astemu.Asterisk // PRESENCE_STATE writes through /asterisk/variable

	mu       sync.Mutex
	user     string
	password string
	srv      *http.Server
	ln       net.Listener
	started  time.Time
	devices  map[string]string // device name -> state; Stasis: ones are set through ARI
	apps     map[string]*app
	globals  map[string]string
	requests []string
	channels map[string]*Channel
	nextChan int
	// pendingHangup is the HangupAfter of the next channel StartStasis makes.
	pendingHangup int
}

// Channel is a channel the fake put into a Stasis application.
type Channel struct {
	ID, App   string
	Caller    string
	Vars      map[string]string
	Continued bool // POST /channels/{id}/continue was called
	Gone      bool // hung up
	// HangupAfter, if > 0, hangs the channel up after that many requests
	// on it (a caller hanging up in the middle of a hook).
	HangupAfter int
	requests    int
}

type app struct {
	sockets map[*websocket.Conn]context.CancelFunc
	devices []string // deviceState subscriptions
}

// New starts a fake ARI; its URL is URL().
func New(user, password string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{user: user, password: password, ln: ln, started: time.Now().UTC(), devices: map[string]string{},
		apps: map[string]*app{}, globals: map[string]string{}, channels: map[string]*Channel{}, Ast: astemu.New()}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the ARI base URL ("http://127.0.0.1:port/ari").
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/ari" }

// Close stops the server.
func (s *Server) Close() {
	s.DropWebsockets()
	_ = s.srv.Close()
}

// Requests returns "METHOD escaped-path?query" of every request.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// DropWebsockets closes every event websocket; applications and their
// subscriptions stay, as in Asterisk.
func (s *Server) DropWebsockets() {
	s.mu.Lock()
	var cancels []context.CancelFunc
	for _, a := range s.apps {
		for _, c := range a.sockets {
			cancels = append(cancels, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// Restart forgets applications and subscriptions and takes a new startup
// time, as an Asterisk restart does; device states stored in astdb
// (Stasis:) and registrations survive.
func (s *Server) Restart() {
	s.DropWebsockets()
	s.mu.Lock()
	s.apps = map[string]*app{}
	s.started = time.Now().UTC().Add(time.Second)
	s.mu.Unlock()
}

// SetDevice changes a device's state (a phone registering, a call), and
// sends DeviceStateChanged to the applications subscribed to it.
func (s *Server) SetDevice(name, state string) { s.setDevice(name, state) }

// Device returns a device's state as GET /deviceStates would.
func (s *Server) Device(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deviceState(name)
}

// Subscriptions returns an application's deviceState subscriptions.
func (s *Server) Subscriptions(appName string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appName]; ok {
		return slices.Clone(a.devices)
	}
	return nil
}

// Connected reports whether an application has an event websocket.
func (s *Server) Connected(appName string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appName]
	return ok && len(a.sockets) > 0
}

// deviceState: s.mu held. Unknown PJSIP endpoints are INVALID; unknown
// Custom: and Stasis: devices UNKNOWN (BEHAVIOUR.md 4.3).
func (s *Server) deviceState(name string) string {
	if st, ok := s.devices[name]; ok {
		return st
	}
	if strings.HasPrefix(name, "PJSIP/") {
		return "INVALID"
	}
	return "UNKNOWN"
}

func (s *Server) setDevice(name, state string) {
	s.mu.Lock()
	old := s.deviceState(name)
	s.devices[name] = state
	if old == state {
		s.mu.Unlock()
		return // an unchanged state sends nothing
	}
	type target struct {
		app string
		c   *websocket.Conn
	}
	var to []target
	for an, a := range s.apps {
		if slices.Contains(a.devices, name) {
			for c := range a.sockets {
				to = append(to, target{an, c})
			}
		}
	}
	s.mu.Unlock()
	for _, t := range to {
		ev := fmt.Sprintf(`{"type":"DeviceStateChanged","application":%q,"timestamp":%q,"device_state":{"name":%q,"state":%q},"asterisk_id":%q}`,
			t.app, time.Now().UTC().Format("2006-01-02T15:04:05.000-0700"), name, state, EntityID)
		s.send(t.c, []byte(ev))
	}
}

// StartStasis puts a new channel into an application, as
// Stasis(app,args...) does, and sends StasisStart in the recorded shape.
// It returns the channel id.
func (s *Server) StartStasis(appName, caller string, args ...string) string {
	s.mu.Lock()
	s.nextChan++
	id := fmt.Sprintf("1795334498.%d", 55+s.nextChan)
	s.channels[id] = &Channel{ID: id, App: appName, Caller: caller, Vars: map[string]string{}, HangupAfter: s.pendingHangup}
	s.pendingHangup = 0
	s.mu.Unlock()
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000-0700")
	data := strings.Join(append([]string{appName}, args...), ",")
	ev, _ := json.Marshal(map[string]any{
		"type": "StasisStart", "timestamp": now, "args": append([]string{}, args...),
		"channel": map[string]any{"id": id, "name": "PJSIP/" + caller + "-00000005", "state": "Ring", "protocol_id": "",
			"caller": map[string]string{"name": "", "number": caller}, "connected": map[string]string{"name": "", "number": ""},
			"accountcode": "", "dialplan": map[string]any{"context": "internal", "exten": "7001", "priority": 1, "app_name": "Stasis", "app_data": data},
			"creationtime": now, "language": "en"},
		"asterisk_id": EntityID, "application": appName,
	})
	s.SendRaw(appName, ev)
	return id
}

// SetHangupAfter makes a channel hang up after n more requests on it.
func (s *Server) SetHangupAfter(id string, n int) {
	s.mu.Lock()
	if c, ok := s.channels[id]; ok {
		c.HangupAfter = c.requests + n
	}
	s.mu.Unlock()
}

// StartStasisHangingUp is StartStasis for a channel that hangs up after n
// requests on it.
func (s *Server) StartStasisHangingUp(appName, caller string, n int, args ...string) string {
	s.mu.Lock()
	s.pendingHangup = n
	s.mu.Unlock()
	return s.StartStasis(appName, caller, args...)
}

// Hangup hangs a Stasis channel up: it is gone for every later request.
func (s *Server) Hangup(id string) {
	s.mu.Lock()
	c, ok := s.channels[id]
	if ok {
		c.Gone = true
	}
	s.mu.Unlock()
}

// ChannelState returns a copy of a channel.
func (s *Server) ChannelState(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return Channel{}, false
	}
	cp := *c
	cp.Vars = map[string]string{}
	for k, v := range c.Vars {
		cp.Vars[k] = v
	}
	return cp, true
}

// SendRaw sends a recorded event, as it stands, to an application's
// websockets.
func (s *Server) SendRaw(appName string, event []byte) {
	s.mu.Lock()
	var to []*websocket.Conn
	if a, ok := s.apps[appName]; ok {
		for c := range a.sockets {
			to = append(to, c)
		}
	}
	s.mu.Unlock()
	for _, c := range to {
		s.send(c, event)
	}
}

func (s *Server) send(c *websocket.Conn, msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, msg)
}

func reply(w http.ResponseWriter, code int, body any) {
	if body == nil {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func message(w http.ResponseWriter, code int, msg string) {
	reply(w, code, map[string]string{"message": msg})
}

// SetPassword changes the password (an edit of ari.conf).
func (s *Server) SetPassword(p string) {
	s.mu.Lock()
	s.password = p
	s.mu.Unlock()
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	creds := s.user + ":" + s.password
	s.mu.Unlock()
	if k := r.URL.Query().Get("api_key"); k != "" {
		return k == creds
	}
	h := r.Header.Get("Authorization")
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
	return err == nil && strings.HasPrefix(h, "Basic ") && string(b) == creds
}

// ServeHTTP routes by the escaped path, so that "PJSIP%2F1001" is one
// segment and "PJSIP/1001" two.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+escaped+"?"+r.URL.RawQuery)
	s.mu.Unlock()
	rest, ok := strings.CutPrefix(escaped, "/ari/")
	if !ok {
		message(w, 404, "Resource not found")
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		message(w, 401, "Authentication required")
		return
	}
	var segs []string
	for _, seg := range strings.Split(rest, "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			message(w, 400, "Bad request")
			return
		}
		segs = append(segs, u)
	}
	op, params, pathFound := match(r.Method, segs)
	if op == nil {
		if pathFound {
			message(w, 405, "Method not allowed")
		} else {
			message(w, 404, "Resource not found")
		}
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "api_key" && !slices.Contains(op.Query, k) {
			message(w, 400, fmt.Sprintf("Unknown parameter %q (not in the ARI definition of %s %s)", k, op.Method, op.Path))
			return
		}
	}
	args := map[string]string{}
	for k := range q {
		args[k] = q.Get(k)
	}
	if op.Body && r.ContentLength != 0 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			message(w, 400, "Bad request: body is not a JSON object")
			return
		}
		for k, v := range body {
			if str, ok := v.(string); ok {
				args[k] = str
			}
		}
	}
	for _, req := range op.Required {
		if args[req] == "" {
			message(w, 400, "Missing parameter "+req)
			return
		}
	}
	s.handle(w, r, op, params, args)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, op *Operation, p, a map[string]string) {
	switch op.Method + " " + op.Path {
	case "GET /asterisk/info":
		s.mu.Lock()
		st := s.started.Format("2006-01-02T15:04:05.000-0700")
		s.mu.Unlock()
		reply(w, 200, map[string]any{"build": map[string]string{"os": "Linux"}, "system": map[string]string{"version": "22.10.1", "entity_id": EntityID},
			"config": map[string]any{"name": "", "default_language": "en"}, "status": map[string]string{"startup_time": st, "last_reload_time": st}})
	case "GET /asterisk/variable":
		if strings.HasSuffix(a["variable"], ")") {
			reply(w, 200, map[string]string{"value": ""}) // functions are not evaluated (BEHAVIOUR.md 4.2)
			return
		}
		s.mu.Lock()
		v := s.globals[a["variable"]]
		s.mu.Unlock()
		reply(w, 200, map[string]string{"value": v})
	case "POST /asterisk/variable":
		if a["variable"] == "" {
			message(w, 400, "Variable name is required")
			return
		}
		if strings.HasSuffix(a["variable"], ")") {
			s.Ast.WriteFunction(a["variable"], a["value"]) // 204 whatever the function thought of it
		} else {
			s.mu.Lock()
			s.globals[a["variable"]] = a["value"]
			s.mu.Unlock()
		}
		reply(w, 204, nil)
	case "GET /deviceStates":
		s.mu.Lock()
		out := []map[string]string{}
		for n, st := range s.devices {
			if strings.HasPrefix(n, "Stasis:") {
				out = append(out, map[string]string{"name": n, "state": st})
			}
		}
		s.mu.Unlock()
		reply(w, 200, out)
	case "GET /deviceStates/{deviceName}":
		reply(w, 200, map[string]string{"name": p["deviceName"], "state": s.Device(p["deviceName"])})
	case "PUT /deviceStates/{deviceName}":
		if !strings.HasPrefix(p["deviceName"], "Stasis:") {
			message(w, 409, "Uncontrolled device specified")
			return
		}
		st := strings.ToUpper(a["deviceState"])
		if !slices.Contains(deviceStates, st) || st == "UNKNOWN" {
			message(w, 500, "Unknown device")
			return
		}
		s.setDevice(p["deviceName"], st)
		reply(w, 204, nil)
	case "DELETE /deviceStates/{deviceName}":
		if !strings.HasPrefix(p["deviceName"], "Stasis:") {
			message(w, 409, "Uncontrolled device specified")
			return
		}
		s.mu.Lock()
		delete(s.devices, p["deviceName"]) // UNKNOWN now, and no event (BEHAVIOUR.md 4.4)
		s.mu.Unlock()
		reply(w, 204, nil)
	case "GET /applications":
		s.mu.Lock()
		out := []any{}
		for n, ap := range s.apps {
			out = append(out, appJSON(n, ap))
		}
		s.mu.Unlock()
		reply(w, 200, out)
	case "GET /applications/{applicationName}", "PUT /applications/{applicationName}/eventFilter":
		// The filter itself is not kept: the fake sends only the events a
		// test asks for.
		s.mu.Lock()
		ap, ok := s.apps[p["applicationName"]]
		var body any
		if ok {
			body = appJSON(p["applicationName"], ap)
		}
		s.mu.Unlock()
		if !ok {
			message(w, 404, "Application not found")
			return
		}
		reply(w, 200, body)
	case "POST /applications/{applicationName}/subscription", "DELETE /applications/{applicationName}/subscription":
		s.subscription(w, r.Method == "POST", p["applicationName"], a["eventSource"])
	case "GET /channels/{channelId}/variable", "POST /channels/{channelId}/variable", "POST /channels/{channelId}/continue":
		s.channel(w, op, p["channelId"], a)
	case "GET /events":
		s.events(w, r, a["app"])
	}
}

// channel serves the variable and continue operations of a Stasis channel
// (BEHAVIOUR.md 4.2: function reads are evaluated on a channel in Stasis).
func (s *Server) channel(w http.ResponseWriter, op *Operation, id string, a map[string]string) {
	s.mu.Lock()
	c, ok := s.channels[id]
	if ok && !c.Gone && c.HangupAfter > 0 && c.requests >= c.HangupAfter {
		c.Gone = true
	}
	if !ok || c.Gone {
		s.mu.Unlock()
		message(w, 404, "Channel not found")
		return
	}
	c.requests++
	if c.Continued {
		s.mu.Unlock()
		message(w, 409, "Channel not in Stasis application")
		return
	}
	name := a["variable"]
	switch op.Method + " " + op.Path {
	case "GET /channels/{channelId}/variable":
		if strings.HasSuffix(name, ")") {
			s.mu.Unlock()
			v, ok := s.Ast.ReadFunction(name)
			if !ok {
				message(w, 500, "Unable to read provided function")
				return
			}
			reply(w, 200, map[string]string{"value": v})
			return
		}
		v, ok := c.Vars[name]
		s.mu.Unlock()
		if !ok {
			message(w, 404, "Provided variable was not found")
			return
		}
		reply(w, 200, map[string]string{"value": v})
	case "POST /channels/{channelId}/variable":
		if name == "" {
			s.mu.Unlock()
			message(w, 400, "Variable name is required")
			return
		}
		if strings.HasSuffix(name, ")") {
			s.mu.Unlock()
			s.Ast.WriteFunction(name, a["value"]) // 204 whatever the function thought
		} else {
			c.Vars[name] = a["value"]
			s.mu.Unlock()
		}
		reply(w, 204, nil)
	case "POST /channels/{channelId}/continue":
		c.Continued = true
		s.mu.Unlock()
		reply(w, 204, nil)
	}
}

func appJSON(name string, a *app) map[string]any {
	return map[string]any{"name": name, "channel_ids": []string{}, "bridge_ids": []string{}, "endpoint_ids": []string{},
		"device_names": slices.Clone(a.devices), "events_allowed": []any{}, "events_disallowed": []any{}}
}

// subscription handles (un)subscribing an application to event sources,
// a comma-separated list (BEHAVIOUR.md 4.4).
func (s *Server) subscription(w http.ResponseWriter, add bool, appName, sources string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ap, ok := s.apps[appName]
	if !ok {
		message(w, 404, "Application not found")
		return
	}
	for _, src := range strings.Split(sources, ",") {
		scheme, name, _ := strings.Cut(src, ":")
		switch scheme {
		case "deviceState":
			if !add && !slices.Contains(ap.devices, name) {
				message(w, 422, "Event source was not subscribed to")
				return
			}
		case "endpoint", "channel", "bridge":
			message(w, 422, "Event source does not exist")
			return
		default:
			message(w, 400, "Invalid event source URI scheme")
			return
		}
	}
	for _, src := range strings.Split(sources, ",") {
		_, name, _ := strings.Cut(src, ":")
		if add && !slices.Contains(ap.devices, name) {
			ap.devices = append(ap.devices, name)
		} else if !add {
			ap.devices = slices.DeleteFunc(ap.devices, func(d string) bool { return d == name })
		}
	}
	reply(w, 200, appJSON(appName, ap))
}

// events serves the event websocket of an application, creating the
// application on its first connection. No event is sent on connect.
func (s *Server) events(w http.ResponseWriter, r *http.Request, appName string) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	s.mu.Lock()
	ap, ok := s.apps[appName]
	if !ok {
		ap = &app{sockets: map[*websocket.Conn]context.CancelFunc{}}
		s.apps[appName] = ap
	}
	ap.sockets[c] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(ap.sockets, c)
		s.mu.Unlock()
		_ = c.CloseNow()
	}()
	// Read until the client goes or the server drops it; ARI clients send
	// nothing, but reading handles pings and closes.
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}
