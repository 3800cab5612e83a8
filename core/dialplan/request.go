package dialplan

import (
	"net/url"
	"strings"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// Request is a parsed hook call.
type Request struct {
	Command string     // "presence/set"
	Args    []string   // positional arguments
	Query   url.Values // ?name=value arguments
	Caller  string     // caller number; "" when Asterisk has none
}

// maxArgs bounds the arguments of one hook; Asterisk itself passes at most 127.
const maxArgs = 16

// ParseRequest parses a hook's script and arguments. script is the path of
// the agi:// URL (agi_network_script, "presence/set?user=1001") or the first
// Stasis argument; args are the arguments after it; caller is the channel's
// caller number, where Asterisk's "unknown" means none.
func ParseRequest(script string, args []string, caller string) (Request, error) {
	cmd, rawQuery, _ := strings.Cut(strings.TrimPrefix(script, "/"), "?")
	req := Request{Command: strings.ToLower(strings.TrimSuffix(cmd, "/")), Args: args}
	if caller != "unknown" {
		req.Caller = caller
	}
	if len(args) > maxArgs {
		return req, presence.Errorf(presence.CodeInvalidArgument, "too many arguments (%d)", len(args))
	}

	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return req, presence.Errorf(presence.CodeInvalidArgument, "cannot parse the query of %q: %v", clip.Clip(script), err)
		}
		req.Query = q
	}
	return req, nil
}

// bind resolves a hook's named parameters from positional and query
// arguments. An argument given both ways must agree; unknown names, repeated
// names and surplus positional arguments are errors, so that a typo in
// extensions.conf is reported rather than ignored.
func bind(command string, params []string, req Request) (map[string]string, error) {
	if len(req.Args) > len(params) {
		return nil, presence.Errorf(presence.CodeInvalidArgument, "%s takes at most %d arguments (%s), got %d",
			command, len(params), strings.Join(params, ", "), len(req.Args))
	}
	p := make(map[string]string, len(params))
	for i, a := range req.Args {
		p[params[i]] = a
	}
	for name, vals := range req.Query {
		known := false
		for _, pn := range params {
			known = known || pn == name
		}
		if !known {
			return nil, presence.Errorf(presence.CodeInvalidArgument, "%s has no argument %q (it takes %s)", command, clip.Clip(name), strings.Join(params, ", "))
		}
		if len(vals) != 1 {
			return nil, presence.Errorf(presence.CodeInvalidArgument, "argument %q given %d times", name, len(vals))
		}
		if pos := p[name]; pos != "" && vals[0] != "" && pos != vals[0] {
			return nil, presence.Errorf(presence.CodeInvalidArgument, "argument %q given twice with different values", name)
		}
		if p[name] == "" {
			p[name] = vals[0]
		}
	}
	return p, nil
}
