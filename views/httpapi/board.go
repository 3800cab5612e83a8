package httpapi

import (
	"embed"
	"net/http"
	"path"
)

// The board: a page at / with its script and style under /board/, all
// embedded in the binary (nothing is fetched from elsewhere at run time).
// The page itself needs no token; what it shows comes from the API with
// the viewer's token (given as /#token=...).

//go:embed board
var boardFiles embed.FS

var boardTypes = map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml"}

func serveBoardFile(w http.ResponseWriter, name string) {
	b, err := boardFiles.ReadFile("board/" + name)
	if err != nil {
		writeError(w, 404, "NOT_FOUND", "no such file")
		return
	}
	h := w.Header()
	h.Set("Content-Type", boardTypes[path.Ext(name)])
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	_, _ = w.Write(b)
}

func boardIndex(w http.ResponseWriter, _ *http.Request) { serveBoardFile(w, "index.html") }

// favicon answers the browsers that ask for /favicon.ico whatever the page
// says.
func favicon(w http.ResponseWriter, _ *http.Request) { serveBoardFile(w, "favicon.svg") }

func boardAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" || path.Ext(name) == "" {
		writeError(w, 404, "NOT_FOUND", "no such file")
		return
	}
	serveBoardFile(w, name)
}

// whoami tells a client (the board) what its token allows.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	scope, _ := s.tokenOf(r, false)
	name := map[Scope]string{ScopeRead: "read", ScopeWrite: "write", ScopeAdmin: "admin"}[scope]
	if s.hidesParties(r, false) {
		name = "states"
	}
	out := map[string]any{"scope": name}
	if s.cfg.Demo {
		out["demo"] = true
	}
	if len(s.cfg.Setup) > 0 {
		out["setup"] = s.cfg.Setup
	}
	writeJSON(w, 200, out)
}

// roster gives the names to show for extensions.
func (s *Server) roster(w http.ResponseWriter, _ *http.Request) {
	names := map[string]string{}
	if s.cfg.Roster != nil {
		names = s.cfg.Roster()
	}
	writeJSON(w, 200, map[string]any{"names": names})
}
