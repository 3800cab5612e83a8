package httpapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// The OpenAPI document lists exactly the routes the server serves, with
// their methods and scopes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range routeTable {
		key := r.Method + " " + r.Path
		seen[key] = true
		op, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s is served but not documented", key)
			continue
		}
		var scopes []string
		for _, s := range op.Security {
			scopes = append(scopes, s["bearer"]...)
		}
		want := map[Scope]string{ScopeRead: "read", ScopeWrite: "write", ScopeAdmin: "admin"}[r.Scope]
		if (want == "" && len(scopes) > 0) || (want != "" && !slices.Contains(scopes, want)) {
			t.Errorf("%s: documented scopes %v, served with %q", key, scopes, want)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !seen[strings.ToUpper(method)+" "+path] {
				t.Errorf("%s %s is documented but not served", method, path)
			}
		}
	}
}
