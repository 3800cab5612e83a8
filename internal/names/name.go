// Package names checks the names presenced takes for things an admin
// names (an ARI application, a node, a token, an app, a phone): the one
// rule, so that each is safe in a log line, a URL and an AMI field.
package names

// Valid reports whether s is 1 to 64 letters, digits, dashes, underscores
// or dots.
func Valid(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
