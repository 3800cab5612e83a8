package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// The front door: what every request passes before a route sees it.
//
//   - Host: without tokens the API is open to whoever can reach it, and
//     only loopback can. A web page on another site can still make the
//     viewer's browser reach it, under a name of the attacker's that
//     resolves to 127.0.0.1 (DNS rebinding); so in open mode only
//     loopback Host values (localhost, 127.0.0.0/8, [::1]) and the names
//     of PRESENCED_HTTP_ALLOWED_HOSTS are served. With tokens, the list
//     applies when given.
//   - Proxies: a local reverse proxy makes every remote client look like
//     loopback. In open mode a request that says it came through one
//     (Forwarded, X-Forwarded-For, X-Forwarded-Host, X-Real-IP, Via) is
//     refused: open mode serves local clients only. A proxy that says
//     nothing cannot be told from a local client: name it in
//     PRESENCED_TRUSTED_PROXIES, and whatever comes from it is refused in
//     open mode; with tokens, the audit lines then name the client it
//     forwards for (X-Forwarded-For) rather than the proxy.
//   - Origin: a browser names the page that made a request. A request from
//     another origin is refused unless PRESENCED_HTTP_ALLOWED_ORIGINS
//     names it; a named origin gets CORS answers, preflight included.
//   - Content-Type: a POST, PUT or PATCH must say application/json, which
//     no HTML form and no CORS "simple request" can.
//   - Bodies: only those methods may have one, of at most 16 KiB
//     (413 beyond), read within PRESENCED_HTTP_BODY_TIMEOUT.

// ParseHosts parses PRESENCED_HTTP_ALLOWED_HOSTS: host names or addresses,
// comma-separated, without ports.
func ParseHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/:@ ") && !strings.HasPrefix(h, "[") {
			if _, err := netip.ParseAddr(h); err != nil {
				return nil, fmt.Errorf("%q is not a host name or address (no scheme, no port)", h)
			}
		}
		out = append(out, strings.Trim(h, "[]"))
	}
	return out, nil
}

// ParseOrigins parses PRESENCED_HTTP_ALLOWED_ORIGINS: origins as browsers
// send them ("https://crm.example.com", "http://10.0.0.5:8080"),
// comma-separated.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q is not an origin such as https://crm.example.com", o)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// loopbackHost reports whether a Host header's host is loopback.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(strings.Trim(hostport, "[]"))
}

var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip", "Via"}

// refusal is a request refused at the front door, counted by reason.
// Its connection is closed after the answer, and what is left of its body
// is read (net/http reads up to 256 KiB of it after the answer, looking
// for its end) for at most refusedLinger: a body trickled a byte at a
// time would otherwise hold the connection, one of
// PRESENCED_HTTP_MAX_CONNS, for as long as its client likes.
func (s *Server) refuse(w http.ResponseWriter, reason string, status int, code, msg string) {
	s.refused.WithLabelValues(reason).Inc()
	letGo(w)
	writeError(w, status, code, msg)
}

// refusedLinger is how long the rest of a refused request's body is read:
// long enough for a client that sent it whole to see the answer rather
// than a reset connection.
const refusedLinger = time.Second

// letGo closes the connection of a refused request after the answer,
// reading its body for at most refusedLinger.
func letGo(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedLinger))
	w.Header().Set("Connection", "close")
}

func (s *Server) open() bool { return s.cfg.Tokens.Len() == 0 }

// front wraps the mux with the checks above.
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if s.cfg.Demo {
			h.Set("Presenced-Demo", "emulated Asterisk")
		}
		if since, stale := s.stale(); stale {
			h.Set(StaleHeader, "cut off from the cluster since "+since.UTC().Format(time.RFC3339)+"; what this node serves may be out of date")
		}
		// Nothing presenced serves may be framed (the board's buttons
		// would be clickjacked).
		h.Set("X-Frame-Options", "DENY")
		if h.Get("Content-Security-Policy") == "" {
			h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		}
		host := hostOnly(r.Host)
		switch {
		case s.open() && !loopbackHost(host) && !s.hostAllowed(host):
			s.refuse(w, "host", http.StatusMisdirectedRequest, "HOST_NOT_ALLOWED",
				"this API without tokens answers to localhost and loopback addresses only (PRESENCED_HTTP_ALLOWED_HOSTS adds names)")
			return
		case !s.open() && len(s.cfg.Hosts) > 0 && !s.hostAllowed(host):
			s.refuse(w, "host", http.StatusMisdirectedRequest, "HOST_NOT_ALLOWED", "this host name is not in PRESENCED_HTTP_ALLOWED_HOSTS")
			return
		}
		if s.open() && s.fromProxy(r) {
			s.refuse(w, "proxied", http.StatusForbidden, "PROXIED",
				"this API without tokens serves local clients only; a request through a proxy (PRESENCED_TRUSTED_PROXIES) needs a token (PRESENCED_API_TOKENS)")
			return
		}
		if s.open() {
			for _, p := range proxyHeaders {
				if r.Header.Get(p) != "" {
					s.refuse(w, "proxied", http.StatusForbidden, "PROXIED",
						"this API without tokens serves local clients only; a request through a proxy needs a token (PRESENCED_API_TOKENS)")
					return
				}
			}
		}
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
			if !s.originAllowed(origin) {
				s.refuse(w, "origin", http.StatusForbidden, "ORIGIN_NOT_ALLOWED",
					"requests from this web origin are not allowed (PRESENCED_HTTP_ALLOWED_ORIGINS)")
				return
			}
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", StaleHeader) // a web app may tell its users
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
				s.refuse(w, "content_type", http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "send the body as Content-Type: application/json")
				return
			}
			if r.ContentLength > maxBody {
				s.refuse(w, "body_size", http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("the body is larger than %d bytes", maxBody))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			// A body trickled a byte at a time must not hold a connection
			// for ever: the whole body is read by this deadline.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout()))
		default:
			if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
				s.refuse(w, "body", http.StatusBadRequest, "INVALID_ARGUMENT", "a "+r.Method+" request has no body")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fromProxy reports whether a request comes from a proxy the admin named
// (PRESENCED_TRUSTED_PROXIES).
func (s *Server) fromProxy(r *http.Request) bool {
	return s.trusted(hostOnly(r.RemoteAddr))
}

func (s *Server) trusted(host string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address an audit line names: the connection's, or,
// from a trusted proxy, the last address of X-Forwarded-For that is not
// one of the trusted proxies (what a client writes there itself comes
// before what the proxies add, and is not believed).
func (s *Server) clientAddr(r *http.Request) string {
	if !s.fromProxy(r) {
		return r.RemoteAddr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if _, err := netip.ParseAddr(h); err != nil {
			break
		}
		if !s.trusted(h) {
			return h
		}
	}
	return r.RemoteAddr
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

func (s *Server) hostAllowed(host string) bool {
	for _, h := range s.cfg.Hosts {
		if h == host {
			return true
		}
	}
	return false
}

// originHosts are the hosts of the allowed origins, as the WebSocket
// library matches them.
func (s *Server) originHosts() []string {
	var out []string
	for _, o := range s.cfg.Origins {
		if u, err := url.Parse(o); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}

func (s *Server) originAllowed(origin string) bool {
	o := strings.ToLower(origin)
	for _, a := range s.cfg.Origins {
		if a == o {
			return true
		}
	}
	return false
}

// sameOrigin: the page is served by this server (presenced serves plain
// HTTP; a TLS proxy in front is not open mode, and sets X-Forwarded-Proto).
func sameOrigin(origin string, r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return strings.EqualFold(origin, scheme+"://"+r.Host)
}

func (s *Server) bodyTimeout() time.Duration {
	if s.cfg.BodyTimeout > 0 {
		return s.cfg.BodyTimeout
	}
	return 10 * time.Second
}

// tooLarge reports whether err is http.MaxBytesReader's.
func tooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// methodNotAllowed answers a path that exists with another method: 405
// and Allow, as RFC 9110 says; a path that does not exist is 404.
func (s *Server) notFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "PUT", "POST", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			if r.Method == http.MethodOptions {
				w.Header().Set("Allow", strings.Join(append(allow, "OPTIONS"), ", "))
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method+" is not allowed here; use "+strings.Join(allow, " or "))
			return
		}
		writeError(w, 404, "NOT_FOUND", "no such endpoint")
	}
}

// StaleHeader is on every answer of a node cut off from its cluster.
const StaleHeader = "Presenced-Stale"

// stale says whether this node is cut off from its cluster (Config.Stale).
func (s *Server) stale() (time.Time, bool) {
	if s.cfg.Stale == nil {
		return time.Time{}, false
	}
	return s.cfg.Stale()
}

// list is a list's answer ({"hints": [...]}), with "stale": true when the
// node is cut off from its cluster.
func (s *Server) list(name string, items any) map[string]any {
	out := map[string]any{name: items}
	if _, stale := s.stale(); stale {
		out["stale"] = true
	}
	return out
}
