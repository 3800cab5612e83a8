package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The admin command line: the HTTP API from a shell, for admins. It talks
// to PRESENCED_URL (default: http:// and PRESENCED_HTTP_LISTEN, so that
// on the host running presenced nothing needs setting) with the token
// PRESENCED_TOKEN (none in open mode).

const adminUsage = `usage:
  presenced presence get USER
  presenced presence set USER STATE [--subtype S] [--message M] [--for 30m]
  presenced presence restore USER
  presenced presence list
  presenced hints [--context NAME]
  presenced webhooks list
  presenced webhooks add URL [--all] [--hints 1001@internal,...] [--providers CustomPresence:1001,...]
                             [--method POST|GET] [--secret S] [--description D]
  presenced webhooks delete ID

  Each takes --json to print the API's answer as it is. The API is
  PRESENCED_URL (default http://127.0.0.1:4574, or PRESENCED_HTTP_LISTEN's
  address), the token PRESENCED_TOKEN. Exit status: 0 done, 1 refused or
  failed (the API's code and message are printed), 2 usage.
`

// adminClient calls the API.
type adminClient struct {
	base, token string
	http        *http.Client
}

// apiError is the API's error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func newAdminClient(environ []string) (*adminClient, error) {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	base := vars[envPrefix+"URL"]
	if base == "" {
		listen := vars[envPrefix+"HTTP_LISTEN"]
		if listen == "" {
			listen = "127.0.0.1:4574"
		}
		if h, p, err := splitHostPortDefault(listen); err == nil {
			listen = h + ":" + p
		}
		base = "http://" + listen
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%sURL %q is not an http(s) URL like http://127.0.0.1:4574", envPrefix, base)
	}
	return &adminClient{base: strings.TrimSuffix(base, "/"), token: vars[envPrefix+"TOKEN"], http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// splitHostPortDefault turns a listen address into one to connect to: an
// empty or unspecified host becomes loopback.
func splitHostPortDefault(listen string) (string, string, error) {
	i := strings.LastIndex(listen, ":")
	if i < 0 {
		return "", "", errors.New("no port")
	}
	host, port := listen[:i], listen[i+1:]
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "[::]", "::":
		host = "[::1]"
	}
	return host, port, nil
}

// call makes one request; out, when not nil, gets the JSON answer; raw is
// the answer as it came.
func (c *adminClient) call(ctx context.Context, method, path string, body, out any) (raw []byte, err error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if method != http.MethodGet && method != http.MethodDelete {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling presenced at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading presenced's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return raw, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("reading presenced's answer: %w", err)
		}
	}
	return raw, nil
}

// adminCmd runs presence, hints and webhooks.
func adminCmd(cmd string, args, environ []string, stdout, stderr io.Writer) int {
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "presenced %s: "+format+"\n%s", append([]any{cmd}, append(a, adminUsage)...)...)
		return 2
	}
	sub := ""
	if cmd != "hints" {
		if len(args) == 0 {
			return usage("say what to do")
		}
		sub, args = args[0], args[1:]
		if sub == "help" || sub == "-h" || sub == "--help" {
			fmt.Fprint(stdout, adminUsage)
			return 0
		}
	}
	fs := flag.NewFlagSet("presenced "+cmd+" "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	asJSON := fs.Bool("json", false, "print the API's answer as it is")
	subtype := fs.String("subtype", "", "presence subtype")
	message := fs.String("message", "", "presence message")
	forDur := fs.String("for", "", "how long, then the previous presence comes back (30m, 1h30m)")
	hctx := fs.String("context", "", "only hints of this context")
	all := fs.Bool("all", false, "the webhook gets every change")
	hintList := fs.String("hints", "", "hints the webhook gets, comma-separated")
	provList := fs.String("providers", "", "presence providers the webhook gets, comma-separated")
	method := fs.String("method", "", "POST (signed JSON) or GET (action URL)")
	secret := fs.String("secret", "", "the webhook's secret (made up when not given)")
	descr := fs.String("description", "", "what the webhook is for")
	// Flags may come after the positional arguments, as admins type them.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, adminUsage)
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	want := func(n int, _ string) bool { return len(pos) == n }
	c, err := newAdminClient(environ)
	if err != nil {
		fmt.Fprintln(stderr, "presenced:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var raw []byte
	var show func() error
	switch cmd + " " + sub {
	case "presence get", "presence restore":
		if !want(1, "USER") {
			return usage("%s takes USER", sub)
		}
		var p struct {
			User     string
			Provider string
			Presence struct{ State, Subtype, Message, Expires string }
			Pending  bool
		}
		if sub == "get" {
			raw, err = c.call(ctx, "GET", "/v1/presence/"+url.PathEscape(pos[0]), nil, &p)
		} else {
			raw, err = c.call(ctx, "POST", "/v1/presence/"+url.PathEscape(pos[0])+"/restore", nil, &p)
		}
		show = func() error {
			return printPresence(stdout, p.User, p.Presence.State, p.Presence.Subtype, p.Presence.Message, p.Presence.Expires, p.Pending)
		}
	case "presence set":
		if !want(2, "USER STATE") {
			return usage("set takes USER STATE")
		}
		body := map[string]string{"state": pos[1]}
		for k, v := range map[string]string{"subtype": *subtype, "message": *message, "for": *forDur} {
			if v != "" {
				body[k] = v
			}
		}
		var p struct {
			User     string
			Presence struct{ State, Subtype, Message, Expires string }
			Pending  bool
		}
		raw, err = c.call(ctx, "PUT", "/v1/presence/"+url.PathEscape(pos[0]), body, &p)
		show = func() error {
			return printPresence(stdout, p.User, p.Presence.State, p.Presence.Subtype, p.Presence.Message, p.Presence.Expires, p.Pending)
		}
	case "presence list":
		if !want(0, "") {
			return usage("list takes no argument")
		}
		var l struct {
			Presence []struct {
				Provider string
				Presence struct{ State, Subtype, Message string }
				Invalid  bool
			}
		}
		raw, err = c.call(ctx, "GET", "/v1/presence", nil, &l)
		show = func() error {
			tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "PROVIDER\tSTATE\tSUBTYPE\tMESSAGE")
			for _, p := range l.Presence {
				st := p.Presence.State
				if p.Invalid {
					st = "(invalid)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Provider, st, p.Presence.Subtype, p.Presence.Message)
			}
			return tw.Flush()
		}
	case "hints ":
		if !want(0, "") {
			return usage("takes no argument")
		}
		var l struct {
			Hints []struct {
				Context, Exten, State string
				Devices, Providers    []string
				Presence              struct{ State, Message string }
			}
		}
		path := "/v1/hints"
		if *hctx != "" {
			path += "?context=" + url.QueryEscape(*hctx)
		}
		raw, err = c.call(ctx, "GET", path, nil, &l)
		show = func() error {
			tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "HINT\tSTATE\tPRESENCE\tMESSAGE\tDEVICES")
			for _, h := range l.Hints {
				fmt.Fprintf(tw, "%s@%s\t%s\t%s\t%s\t%s\n", h.Exten, h.Context, h.State, h.Presence.State, h.Presence.Message, strings.Join(h.Devices, "&"))
			}
			return tw.Flush()
		}
	case "webhooks list":
		if !want(0, "") {
			return usage("list takes no argument")
		}
		var l struct {
			Webhooks []struct {
				ID, URL, Method, Description string
				Status                       struct {
					Backlog, Delivered uint64
					LastError          string `json:"last_error"`
				}
			}
		}
		raw, err = c.call(ctx, "GET", "/v1/webhooks", nil, &l)
		show = func() error {
			sort.Slice(l.Webhooks, func(i, j int) bool { return l.Webhooks[i].ID < l.Webhooks[j].ID })
			tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tMETHOD\tURL\tDELIVERED\tBACKLOG\tLAST ERROR")
			for _, w := range l.Webhooks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", w.ID, w.Method, w.URL, w.Status.Delivered, w.Status.Backlog, w.Status.LastError)
			}
			return tw.Flush()
		}
	case "webhooks add":
		if !want(1, "URL") {
			return usage("add takes URL")
		}
		spec := map[string]any{"url": pos[0]}
		if *all {
			spec["all"] = true
		}
		if l := splitComma(*hintList); len(l) > 0 {
			spec["hints"] = l
		}
		if l := splitComma(*provList); len(l) > 0 {
			spec["providers"] = l
		}
		for k, v := range map[string]string{"method": *method, "secret": *secret, "description": *descr} {
			if v != "" {
				spec[k] = v
			}
		}
		var w struct{ ID, Secret string }
		raw, err = c.call(ctx, "POST", "/v1/webhooks", spec, &w)
		show = func() error {
			_, err := fmt.Fprintf(stdout, "created %s\nsecret %s (shown this once: keep it to check signatures)\n", w.ID, w.Secret)
			return err
		}
	case "webhooks delete":
		if !want(1, "ID") {
			return usage("delete takes ID")
		}
		raw, err = c.call(ctx, "DELETE", "/v1/webhooks/"+url.PathEscape(pos[0]), nil, nil)
		show = func() error { _, err := fmt.Fprintf(stdout, "deleted %s\n", pos[0]); return err }
	default:
		return usage("unknown command %q", sub)
	}
	if err != nil {
		fmt.Fprintln(stderr, "presenced:", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(raw)
		return 0
	}
	if err := show(); err != nil {
		fmt.Fprintln(stderr, "presenced:", err)
		return 1
	}
	return 0
}

func printPresence(w io.Writer, user, state, subtype, message, expires string, pending bool) error {
	fmt.Fprintf(w, "%s: %s", user, state)
	if subtype != "" {
		fmt.Fprintf(w, " (%s)", subtype)
	}
	if message != "" {
		fmt.Fprintf(w, " %q", message)
	}
	if expires != "" {
		fmt.Fprintf(w, " until %s", expires)
	}
	if pending {
		fmt.Fprint(w, " [pending: written when Asterisk is back]")
	}
	_, err := fmt.Fprintln(w)
	return err
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
