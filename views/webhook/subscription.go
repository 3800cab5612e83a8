package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/views/filter"
)

// Spec is what a webhook is created from.
type Spec struct {
	// URL is the target. With Method POST (the default) it gets the event
	// as a signed JSON body; with GET it is an action URL template.
	URL    string `json:"url"`
	Method string `json:"method,omitempty"`
	// Secret signs deliveries; empty: one is generated and returned once.
	Secret      string `json:"secret,omitempty"`
	Description string `json:"description,omitempty"`
	// What to send: everything, or some hints and presence providers.
	All       bool     `json:"all,omitempty"`
	Hints     []string `json:"hints,omitempty"`
	Providers []string `json:"providers,omitempty"`
	// Bearer, for a GET action URL, is sent as Authorization: Bearer (a
	// phone's command URL wants its token so); kept like the secret, never
	// shown again.
	Bearer string `json:"bearer,omitempty"`
}

// Limits of a spec.
const (
	minSecret = 16
	maxSecret = 256
	maxDescr  = 200
)

// subscription is a webhook as stored.
type subscription struct {
	ID string `json:"id"`
	Spec
	Created time.Time `json:"created"`
	// StartSeq is the journal's head when the webhook was created: the
	// state at that point is its snapshot; changes after it follow.
	StartSeq uint64 `json:"start_seq"`
}

func (s subscription) filter() watch.Filter {
	return filter.Spec{All: s.All, Hints: s.Hints, Providers: s.Providers}.Watch("")
}

// validate turns a spec into a subscription, or says what is wrong with
// it in a presence.Error with CodeInvalidArgument.
func validate(spec Spec) (subscription, template, error) {
	bad := func(format string, args ...any) (subscription, template, error) {
		return subscription{}, nil, presence.Errorf(presence.CodeInvalidArgument, format, args...)
	}
	method := strings.ToUpper(spec.Method)
	if method == "" {
		method = "POST"
	}
	var tmpl template
	switch method {
	case "POST":
		if strings.ContainsAny(spec.URL, "{}") {
			return bad("webhook url: placeholders ({user}, ...) are for GET action URLs; a POST gets the event as JSON")
		}
		if err := checkURL(spec.URL); err != nil {
			return bad("webhook url: %v", err)
		}
	case "GET":
		t, err := parseTemplate(spec.URL)
		if err != nil {
			return bad("webhook url: %v", err)
		}
		tmpl = t
	default:
		return bad("webhook method must be POST (signed JSON) or GET (action URL), not %q", clip.Clip(spec.Method))
	}
	secret := spec.Secret
	switch {
	case secret == "":
		var b [32]byte
		_, _ = rand.Read(b[:])
		secret = hex.EncodeToString(b[:])
	case len(secret) < minSecret || len(secret) > maxSecret:
		return bad("webhook secret must be %d to %d bytes", minSecret, maxSecret)
	}
	if spec.Bearer != "" {
		if method != "GET" {
			return bad("webhook bearer: for GET action URLs (a POST is signed with the secret)")
		}
		if len(spec.Bearer) < 8 || len(spec.Bearer) > 512 || strings.IndexFunc(spec.Bearer, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			return bad("webhook bearer: 8 to 512 printable characters without spaces")
		}
	}
	if len(spec.Description) > maxDescr || !utf8.ValidString(spec.Description) {
		return bad("webhook description must be UTF-8 of at most %d bytes", maxDescr)
	}
	if err := (filter.Spec{All: spec.All, Hints: spec.Hints, Providers: spec.Providers}).Check(); err != nil {
		return subscription{}, nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	spec.Method, spec.Secret = method, secret
	return subscription{ID: "wh_" + hex.EncodeToString(id[:]), Spec: spec}, tmpl, nil
}

// Info is a webhook as the API shows it: the URL with any password
// hidden, and never the secret.
type Info struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Method      string    `json:"method"`
	Description string    `json:"description,omitempty"`
	All         bool      `json:"all,omitempty"`
	Hints       []string  `json:"hints,omitempty"`
	Providers   []string  `json:"providers,omitempty"`
	Created     time.Time `json:"created"`
	Status      Status    `json:"status"`
}

// Status is how a webhook's deliveries go.
type Status struct {
	// Cursor is the id of the last event delivered (or passed over);
	// Backlog how many events of the journal are after it (not all of
	// them need be for this webhook).
	Cursor  uint64 `json:"cursor"`
	Backlog uint64 `json:"backlog"`
	// Node, in a cluster, is the node that delivers the webhook now ("":
	// none at this moment, one takes it over within seconds). The counts
	// below are that node's, since it took the webhook.
	Node string `json:"node,omitempty"`
	// Delivered: answered 2xx. Rejected: answered with a status that is
	// not retried (a 4xx other than 408, 425, 429, or a redirect), so
	// the event was given up. FailedAttempts: attempts that will be retried.
	Delivered      uint64    `json:"delivered"`
	Rejected       uint64    `json:"rejected"`
	FailedAttempts uint64    `json:"failed_attempts"`
	LastError      string    `json:"last_error,omitempty"`
	LastAttempt    time.Time `json:"last_attempt,omitzero"`
	FailingSince   time.Time `json:"failing_since,omitzero"`
	NextAttempt    time.Time `json:"next_attempt,omitzero"`
}

// redactedURL hides a password in a URL (user:xxxxx@host).
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// logTarget is how a target appears in logs: scheme, host and path only,
// never credentials or a query (which may carry an API key).
func logTarget(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}
