package httpapi

import (
	_ "embed"
	"net/http"
)

// openapi.json describes the HTTP API; openapi_test.go keeps it true to
// the route table.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
