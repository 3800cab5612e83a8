package hints

import (
	"strings"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// DefaultContext is the context of a hint reference without "@context",
// everywhere presenced takes one (hooks, REST, SSE and WebSocket filters,
// webhooks).
const DefaultContext = "default"

// ParseHintRef parses "exten[@context]". Extensions may hold digits,
// letters and * # + _ . - ; contexts letters, digits and _ - . ; both at
// most 80 bytes (AST_MAX_EXTENSION / AST_MAX_CONTEXT).
func ParseHintRef(ref string) (exten, context string, err error) {
	exten, context, found := strings.Cut(ref, "@")
	if !found {
		context = DefaultContext
	}
	if !validRef(exten, "*#+_.-") {
		return "", "", presence.Errorf(presence.CodeInvalidArgument, "invalid extension %q in hint reference", clip.Clip(exten))
	}
	if !validRef(context, "_-.") {
		return "", "", presence.Errorf(presence.CodeInvalidArgument, "invalid context %q in hint reference", clip.Clip(context))
	}
	return exten, context, nil
}

func validRef(s, extra string) bool {
	if s == "" || len(s) > 80 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// SplitSite splits a hint reference of a cluster of several sites,
// "site/exten[@context]", into the site and the rest; site is "" when
// the reference names none. The site is not checked here
// (presence.ValidateSite).
func SplitSite(ref string) (site, rest string) {
	if site, rest, ok := strings.Cut(ref, "/"); ok {
		return site, rest
	}
	return "", ref
}
