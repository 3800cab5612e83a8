// Package httpapi is presenced's HTTP surface: the operations endpoints
// (/healthz, /readyz with what presenced cannot see, /metrics), bearer
// tokens with scopes, under /v1 the REST API for hints, presence and
// webhooks, Server-Sent Events and the WebSocket protocol, and the board
// at /. Event streams run on their hijacked connections, without a
// goroutine per idle watcher (forward.go, sse_stream.go, ws.go).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/internal/ratelimit"
)

// Check is one readiness check: "" when fine, else what is wrong.
// NotConfigured marks a part the admin chose not to use: reported, but not
// a reason to be unready.
type Check struct {
	Name          string
	Problem       func() string
	NotConfigured bool
}

// Config configures the server.
type Config struct {
	Addr   string
	Checks []Check
	// Version is presenced's, shown by /healthz.
	Version string
	// Demo marks a demonstration against an emulated Asterisk (make
	// demo): the board and /healthz say so, and so does every answer
	// (a Presenced-Demo header).
	Demo bool
	// Stale, in a cluster, says whether this node is cut off from the
	// cluster, and since when: what it serves meanwhile may be out of date
	// (a Presenced-Stale header on every answer; "stale": true in
	// presence, hint and call lists and a user's presence).
	Stale func() (since time.Time, stale bool)
	// Setup says what the admin has yet to set (no Asterisk configured):
	// the board shows it.
	Setup []string
	// Cluster, in a cluster, says what /readyz shows of it (this node, its
	// site, the NATS server it is on, the change log's replicas, its lag).
	Cluster  func(ctx context.Context) any
	Registry *prometheus.Registry
	Tokens   *Tokens    // none: the API is open, and listens on loopback only
	Hints    Hints      // nil: no /v1/hints
	Presence Presence   // nil: no /v1/presence
	Hub      *watch.Hub // nil: no /v1/events
	Webhooks Webhooks   // nil: no /v1/webhooks
	Calls    Calls      // nil: no /v1/calls (no AMI)
	Dialer   Dialer     // nil: no dialling nor hanging up (no AMI)
	Forwards Forwards   // nil: no /v1/forwards
	Phones   Phones     // nil: no /v1/phone-events
	// Mounts are protocol facades served beside the API (the xuc Phone
	// API), behind the same front door; they check their own logins.
	Mounts []Mount
	// Roster gives the names the board shows, by extension (nil: none).
	Roster func() map[string]string
	// WriteTimeout bounds each write to an event stream (default 10s): a
	// client that stops reading is disconnected, and its subscription freed.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds how long Close lets requests in flight finish
	// (default 5s).
	ShutdownTimeout time.Duration
	// Hosts are Host names served besides loopback ones in open mode (and
	// the only ones served, when given, with tokens). Origins are the web
	// origins allowed besides the API's own (CORS, WebSocket). See front.go.
	Hosts, Origins []string
	// TrustedProxies are the reverse proxies in front of presenced
	// (PRESENCED_TRUSTED_PROXIES): see front.go.
	TrustedProxies []netip.Prefix
	// BodyTimeout bounds the reading of a request body (default 10s).
	BodyTimeout time.Duration
	// MaxConns caps the connections open at once, event streams included
	// (default 16384).
	MaxConns int
	// Log is where net/http's own messages go too; presenced's logger
	// removes secrets from every line.
	Log zerolog.Logger
}

// Mount is a facade's handler and the path pattern it serves ("/xuc/").
type Mount struct {
	Pattern string
	Handler http.Handler
}

// Server is the HTTP server.
type Server struct {
	cfg     Config
	ln      net.Listener
	srv     *http.Server
	done    chan struct{}
	base    context.Context // of every request; cancelled by Close so that event streams end
	cancel  context.CancelFunc
	metrics http.HandlerFunc
	// Open event streams, by transport, for metrics.
	sseStreams, wsStreams atomic.Int64
	refused               *prometheus.CounterVec // requests and connections refused at the door, by reason
	phoneLimit            *ratelimit.Keyed       // phone events, per token
	testLimit             *ratelimit.Keyed       // webhook tests, per token
	streams               streams                // open event streams, by token
}

// New returns a server; Open binds it.
func New(cfg Config) *Server {
	base, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, done: make(chan struct{}), base: base, cancel: cancel,
		phoneLimit: ratelimit.New(phoneEvery, phoneBurst, 10000), testLimit: ratelimit.New(10*time.Second, 5, 1000)}
}

// Open binds the address and starts serving. Until the API has tokens,
// it listens on loopback only: anything else is refused at start.
func (s *Server) Open(context.Context) error {
	host, _, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen address %q: %w", s.cfg.Addr, err)
	}
	open := s.open()
	if ip := net.ParseIP(host); open && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("http: refusing to listen on %s: without API tokens (PRESENCED_API_TOKENS) the HTTP API listens on loopback only (127.0.0.1, ::1)", s.cfg.Addr)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listening on %s: %w", s.cfg.Addr, err)
	}
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presenced_http_refused_total",
		Help: "HTTP connections and requests refused before reaching the API, by reason (connections: the connection cap; host, origin, proxied, content_type, body, body_size)."},
		[]string{"reason"})
	if err := s.cfg.Registry.Register(s.refused); err != nil {
		_ = ln.Close()
		return fmt.Errorf("http: registering metrics: %w", err)
	}
	maxConns := s.cfg.MaxConns
	if maxConns <= 0 {
		maxConns = 16384
	}
	ln = &limitListener{Listener: ln, max: int64(maxConns), refused: s.refused.WithLabelValues("connections").Inc}
	s.ln = ln
	mux := http.NewServeMux()
	s.metrics = promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP
	for transport, n := range map[string]*atomic.Int64{"sse": &s.sseStreams, "websocket": &s.wsStreams} {
		if err := s.cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presenced_watchers",
			Help: "Open event streams (Server-Sent Events, WebSocket connections).", ConstLabels: prometheus.Labels{"transport": transport}},
			func() float64 { return float64(n.Load()) })); err != nil {
			_ = ln.Close()
			return fmt.Errorf("http: registering metrics: %w", err)
		}
	}
	s.routes(mux)
	for _, mt := range s.cfg.Mounts {
		mux.Handle(mt.Pattern, mt.Handler)
	}
	mux.HandleFunc("GET /{$}", boardIndex)
	mux.HandleFunc("GET /board/{file}", boardAsset)
	mux.HandleFunc("GET /favicon.ico", favicon)
	mux.HandleFunc("/", s.notFound(mux))
	// No write timeout: event streams are long-lived; keepalives notice
	// dead clients. Bodies have their own deadline (front.go).
	s.srv = &http.Server{Handler: s.front(mux), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: log.New(errorLog{s}, "", 0),
		BaseContext: func(net.Listener) context.Context { return s.base }}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Error().Err(err).Msg("http server stopped")
		}
	}()
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, letting requests in flight finish for at most
// ShutdownTimeout.
func (s *Server) Close() error {
	s.cancel()
	if s.srv == nil {
		return nil
	}
	d := s.cfg.ShutdownTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// errorLog takes net/http's own messages (a TLS handshake on the plain
// port, a panic in a handler) into presenced's log.
type errorLog struct{ s *Server }

func (e errorLog) Write(p []byte) (int, error) {
	e.s.cfg.Log.Warn().Str("error", strings.TrimSpace(string(p))).Msg("http server")
	return len(p), nil
}

func (s *Server) writeTimeout() time.Duration {
	if s.cfg.WriteTimeout > 0 {
		return s.cfg.WriteTimeout
	}
	return 10 * time.Second
}

// healthz answers "ok", and on a second line the version running (an
// admin checking an upgrade, a monitor telling nodes apart).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	v := s.cfg.Version
	if v == "" {
		v = "dev"
	}
	if s.cfg.Demo {
		v += " (demo: an emulated Asterisk)"
	}
	_, _ = io.WriteString(w, "ok\nversion "+v+"\n")
}

// readyz answers 200 when every configured part is fine, 503 otherwise,
// with a JSON object naming each part and its state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ready := true
	for _, c := range s.cfg.Checks {
		switch p := c.Problem(); {
		case c.NotConfigured:
			checks[c.Name] = "not configured"
		case p == "":
			checks[c.Name] = "ok"
		default:
			checks[c.Name] = p
			ready = false
		}
	}
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "application/json")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	var cluster any
	if s.cfg.Cluster != nil {
		cluster = s.cfg.Cluster(r.Context())
	}
	_ = json.NewEncoder(w).Encode(struct {
		Ready   bool              `json:"ready"`
		Checks  map[string]string `json:"checks"`
		Cluster any               `json:"cluster,omitempty"`
	}{ready, checks, cluster})
}
