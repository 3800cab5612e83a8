package webhook

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/presenced/presenced/internal/clip"
)

// Action URLs: the GET form, for systems that take a URL and nothing else
// (as desk phones call one on their call events):
//
//	http://crm.local/p?user={user}&state={state}&msg={message}
//
// Each {name} is replaced by the event's value, escaped for where it
// stands: path escaping before the "?", query escaping after it. Names
// outside the table, unclosed braces, or a placeholder in the scheme or
// host are refused when the webhook is created.

// placeholders are the names an action URL may use, and their values.
var placeholders = map[string]func(Event) string{
	"id":   func(e Event) string { return e.ID },
	"type": func(e Event) string { return e.Type },
	"time": func(e Event) string { return e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00") },
	// user: a presence event's provider user (CustomPresence:1001 -> 1001),
	// a hint's extension.
	"user":     func(e Event) string { return e.user() },
	"provider": func(e Event) string { return e.Provider },
	"exten": func(e Event) string {
		if e.Hint != nil {
			return e.Hint.Exten
		}
		return ""
	},
	"context": func(e Event) string {
		if e.Hint != nil {
			return e.Hint.Context
		}
		return ""
	},
	"state":   func(e Event) string { return e.value().State.String() },
	"subtype": func(e Event) string { return e.value().Subtype },
	"message": func(e Event) string { return e.value().Message },
	"hint_state": func(e Event) string {
		if e.Hint != nil {
			return e.Hint.Extension.String()
		}
		return ""
	},
	"device_state": func(e Event) string {
		if e.Hint != nil {
			return e.Hint.Device.String()
		}
		return ""
	},
}

// PlaceholderNames lists the names an action URL may use.
func PlaceholderNames() []string {
	out := make([]string, 0, len(placeholders))
	for n := range placeholders {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type part struct {
	lit   string
	name  string // a placeholder, when lit is ""
	query bool   // after the "?": query escaping
}

// template is a parsed action URL.
type template []part

// maxURL bounds a target URL, template or not.
const maxURL = 2048

// parseTemplate parses and checks an action URL.
func parseTemplate(s string) (template, error) {
	if len(s) > maxURL {
		return nil, fmt.Errorf("the URL is longer than %d bytes", maxURL)
	}
	var t template
	inQuery := false
	// The authority ends at the first "/", "?" or "#" after "scheme://".
	authorityEnd := len(s)
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexAny(s[i+3:], "/?#"); j >= 0 {
			authorityEnd = i + 3 + j
		}
	}
	probe := strings.Builder{}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '}':
			return nil, fmt.Errorf("a %q without its %q at byte %d", "}", "{", i+1)
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("the %q at byte %d is not closed", "{", i+1)
			}
			name := s[i+1 : i+end]
			if _, ok := placeholders[name]; !ok {
				return nil, fmt.Errorf("unknown placeholder {%s} at byte %d (known: %s)", clip.Clip(name), i+1, strings.Join(PlaceholderNames(), ", "))
			}
			if i < authorityEnd {
				return nil, fmt.Errorf("placeholder {%s} in the scheme or host: only the path and the query may vary", name)
			}
			t = append(t, part{name: name, query: inQuery})
			probe.WriteString("x")
			i += end + 1
		default:
			j := i
			for j < len(s) && s[j] != '{' && s[j] != '}' {
				if s[j] == '?' {
					inQuery = true
				}
				j++
			}
			t = append(t, part{lit: s[i:j]})
			probe.WriteString(s[i:j])
			i = j
		}
	}
	if err := checkURL(probe.String()); err != nil {
		return nil, err
	}
	return t, nil
}

// checkURL accepts absolute http and https URLs with a host and without a
// fragment.
func checkURL(s string) error {
	if len(s) > maxURL {
		return fmt.Errorf("the URL is longer than %d bytes", maxURL)
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c == 0x7f {
			return fmt.Errorf("the URL has a space or a control character")
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("the URL does not parse: %v", redactErr(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("the URL's scheme must be http or https, not %q", clip.Clip(u.Scheme))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("the URL has no host")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("the URL has a fragment, which is never sent")
	}
	return nil
}

// expand fills the template in with an event.
func (t template) expand(e Event) string {
	var b strings.Builder
	for _, p := range t {
		switch {
		case p.lit != "":
			b.WriteString(p.lit)
		case p.query:
			b.WriteString(url.QueryEscape(placeholders[p.name](e)))
		default:
			b.WriteString(url.PathEscape(placeholders[p.name](e)))
		}
	}
	return b.String()
}

// redactErr keeps a URL parse error from echoing the URL, which may hold
// credentials.
func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}
