package appws

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/internal/linefile"
	"github.com/presenced/presenced/internal/names"
	"github.com/presenced/presenced/internal/ratelimit"
)

// Setter sets a user's presence, as the REST API does
// (presence.Client).
type Setter interface {
	Set(ctx context.Context, user string, v presence.Value) (got presence.Value, pending bool, err error)
}

// Config configures a Server.
type Config struct {
	// Apps are the apps' passwords, by app name.
	Apps     map[string]string
	Hub      *watch.Hub
	Presence Setter
	// Origins are the web origins' hosts allowed besides the server's own.
	Origins []string
	Log     zerolog.Logger
	// Now is the clock of the login backoff (default time.Now).
	Now func() time.Time
}

// Path is where the WebSocket is served.
const Path = "/appws"

// Server serves the app WebSocket.
type Server struct {
	cfg Config
	// failures holds back digest guessing, per app and per address;
	// logged lets a few of its log lines through.
	failures *ratelimit.Backoff
	logged   *ratelimit.Sampler
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, failures: ratelimit.NewBackoff(5, time.Second, 5*time.Minute, 10000).WithClock(cfg.Now),
		logged: ratelimit.NewSampler(10*time.Second, 10)}
}

// maxSocketFailures is how many failed logins one socket may make before
// it is closed.
const maxSocketFailures = 3

// ParseApps reads an apps file: "app:password" a line, # comments. App
// names are 1 to 64 letters, digits, "-", "_", "."; a password is not
// empty.
func ParseApps(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	err := linefile.Read(r, "app", func(line string) (string, error) {
		app, pw, ok := strings.Cut(line, ":")
		if !ok || pw == "" || !names.Valid(app) {
			return "", errors.New("want app:password (an app name of letters, digits, -, _, .)")
		}
		out[app] = pw
		return app, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Handler serves the WebSocket.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, s.serve)
	return mux
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.Origins})
	if err != nil {
		return
	}
	c.SetReadLimit(maxMessage)
	cn := &conn{s: s, c: c, subs: map[string]json.RawMessage{}, remote: r.RemoteAddr}
	cn.run(r.Context())
}

// conn is one app's WebSocket.
type conn struct {
	s         *Server
	c         *websocket.Conn
	challenge string
	app       string // logged in as
	remote    string // the client's address
	failures  int    // failed logins on this socket

	mu   sync.Mutex                 // subs, last, and the writes
	subs map[string]json.RawMessage // user -> the src of its subscription
	last map[string]Presence        // user -> last sent
	sub  *watch.Sub
}

// out is a message to the app; the members of its type only.
type out struct {
	MT        string          `json:"mt"`
	API       string          `json:"api,omitempty"`
	Src       json.RawMessage `json:"src,omitempty"`
	Challenge string          `json:"challenge,omitempty"`
	OK        *bool           `json:"ok,omitempty"`
	SIP       string          `json:"sip,omitempty"`
	Num       string          `json:"num,omitempty"`
	Presence  []Presence      `json:"presence,omitempty"`
	Error     int             `json:"error,omitempty"`
	ErrorText string          `json:"errorText,omitempty"`
	ErrorCode string          `json:"errorCode,omitempty"`
}

const writeTimeout = 10 * time.Second

// send writes a message; c.mu is held.
func (c *conn) send(ctx context.Context, m out) {
	data, _ := json.Marshal(m)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if c.c.Write(wctx, websocket.MessageText, data) != nil {
		_ = c.c.CloseNow()
	}
}

func (c *conn) reply(ctx context.Context, m out) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.send(ctx, m)
}

func (c *conn) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() { _ = c.c.CloseNow() }()
	defer func() {
		c.mu.Lock()
		if c.sub != nil {
			c.sub.Close()
		}
		c.mu.Unlock()
	}()
	for {
		typ, data, err := c.c.Read(ctx)
		if err != nil {
			return
		}
		var m In
		if typ != websocket.MessageText {
			err = fmt.Errorf("a binary message: send JSON text")
		} else {
			m, err = Decode(data)
		}
		if err != nil {
			c.reply(ctx, out{MT: "Error", Error: 1, ErrorText: err.Error(), ErrorCode: string(presence.CodeInvalidArgument)})
			continue
		}
		if !c.handle(ctx, m) {
			return
		}
	}
}

// logout forgets the login and the subscriptions.
func (c *conn) logout() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.app = ""
	if c.sub != nil {
		c.sub.Close()
		c.sub = nil
	}
	clear(c.subs)
	clear(c.last)
}

// handle answers one message; false ends the connection.
func (c *conn) handle(ctx context.Context, m In) bool {
	res := out{MT: m.MT + "Result", API: m.API, Src: m.Src}
	switch m.MT {
	case "AppChallenge":
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.challenge = hex.EncodeToString(b)
		res.Challenge = c.challenge
		c.reply(ctx, res)
		return true
	case "AppLogin":
		// A login, right or wrong, ends the one before: a failed
		// re-login leaves the socket logged out, its subscriptions gone.
		c.logout()
		keys := ratelimit.LoginKeys(m.App, c.remote)
		f := false
		res.OK = &f
		if wait := c.s.failures.Wait(keys...); wait > 0 {
			res.Error, res.ErrorText, res.ErrorCode = 1, fmt.Sprintf("too many failed logins; try again in %d s", ratelimit.RetryAfterSeconds(wait)), string(presence.CodeRateLimited)
			c.reply(ctx, res)
			_ = c.c.Close(websocket.StatusPolicyViolation, "too many failed logins")
			return false
		}
		pw, known := c.s.cfg.Apps[m.App]
		ok := false
		if c.challenge != "" {
			want := Digest(m.App, m.Domain, m.SIP, m.GUID, m.DN, m.Info, c.challenge, pw)
			ok = subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(m.Digest))) == 1 && known
		}
		c.challenge = "" // one login per challenge
		res.OK = &ok
		if !ok {
			c.failures++
			n := c.s.failures.Failed(keys...)
			if log, held := c.s.logged.Allow(); log {
				c.s.cfg.Log.Warn().Str("app", clip.Clip(m.App)).Str("remote", c.remote).Int("failures", n).Int("not_logged", held).Msg("app login refused")
			}
			res.Error, res.ErrorText = 1, "wrong app, digest or challenge: ask AppChallenge again"
			c.reply(ctx, res)
			if c.failures >= maxSocketFailures {
				_ = c.c.Close(websocket.StatusPolicyViolation, "too many failed logins")
				return false
			}
			return true
		}
		c.s.failures.Succeeded(keys...)
		c.failures = 0
		c.app = m.App
		c.s.cfg.Log.Info().Str("app", m.App).Str("sip", clip.Clip(m.SIP)).Str("remote", c.remote).Msg("app logged in")
		c.reply(ctx, res)
		return true
	}
	if c.app == "" {
		res.Error, res.ErrorText, res.ErrorCode = 1, "log in first (AppChallenge, AppLogin)", "UNAUTHENTICATED"
		c.reply(ctx, res)
		_ = c.c.Close(websocket.StatusPolicyViolation, "log in first")
		return false
	}
	switch m.MT {
	case "SubscribePresence":
		c.subscribe(ctx, m, res)
	case "SetPresence":
		c.setPresence(ctx, m, res)
	default:
		res.Error, res.ErrorText, res.ErrorCode = 1, fmt.Sprintf("unknown message %q (SubscribePresence, SetPresence)", clip.Clip(m.MT)), string(presence.CodeInvalidArgument)
		c.reply(ctx, res)
	}
	return true
}

// userOf is the user a message names: sip, else num.
func userOf(m In) (string, error) {
	u := m.SIP
	if u == "" {
		u = m.Num
	}
	return u, presence.ValidateUser(u)
}

func fail(res out, err error) out {
	res.Error, res.ErrorText, res.ErrorCode = 1, presence.ErrorMessage(err), string(presence.ErrorCode(err))
	return res
}

func (c *conn) setPresence(ctx context.Context, m In, res out) {
	user, err := userOf(m)
	if err == nil {
		activity := ""
		if m.Activity != nil {
			activity = *m.Activity
		}
		var v presence.Value
		if v, err = ToValue(activity, m.Note); err == nil {
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			_, _, err = c.s.cfg.Presence.Set(wctx, user, v)
			cancel()
		}
	}
	c.s.cfg.Log.Info().Str("app", c.app).Str("user", clip.Clip(m.SIP+m.Num)).Str("result", string(presence.ErrorCode(err))).Msg("app write")
	if err != nil {
		res = fail(res, err)
	}
	c.reply(ctx, res)
}

// subscribe starts sending a user's presence: the result, the current
// state, then each change. One watch of the hub serves every user the app
// subscribes to.
func (c *conn) subscribe(ctx context.Context, m In, res out) {
	user, err := userOf(m)
	if err != nil {
		c.reply(ctx, fail(res, err))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subs) >= 5000 {
		c.send(ctx, fail(res, presence.Errorf(presence.CodeInvalidArgument, "at most 5000 subscriptions")))
		return
	}
	res.SIP, res.Num = m.SIP, m.Num
	c.send(ctx, res)
	c.subs[user] = m.Src
	if c.sub == nil {
		c.last = map[string]Presence{}
		sub, snap := c.s.cfg.Hub.Subscribe(watch.Filter{All: true}, nil)
		c.sub = sub
		for _, ev := range snap.Items {
			c.note(ev)
		}
		go c.follow(ctx, sub)
	}
	p, ok := c.last[user]
	if !ok {
		p = FromValue(presence.Value{})
		c.last[user] = p
	}
	c.send(ctx, out{MT: "PresenceState", API: m.API, Src: m.Src, SIP: user, Num: user, Presence: []Presence{p}})
}

// note keeps a provider's presence; c.mu is held. It reports the user and
// whether what it shows changed.
func (c *conn) note(ev *watch.Event) (string, bool) {
	pp, ok := ev.Value.(hints.ProviderPresence)
	if !ok {
		return "", false
	}
	user, err := presence.ParseProvider(ev.Key)
	if err != nil {
		return "", false
	}
	p := FromValue(pp.Value)
	old, had := c.last[user]
	c.last[user] = p
	return user, !had || old != p
}

func (c *conn) follow(ctx context.Context, sub *watch.Sub) {
	err := sub.Follow(ctx, func(evs []*watch.Event) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range evs {
			user, changed := c.note(ev)
			if src, subscribed := c.subs[user]; changed && subscribed {
				c.send(ctx, out{MT: "PresenceUpdate", API: "PbxApi", Src: src, SIP: user, Num: user, Presence: []Presence{c.last[user]}})
			}
		}
	})
	var dropped *watch.DroppedError
	if errors.As(err, &dropped) {
		// Hopelessly behind: the app reconnects and subscribes again.
		_ = c.c.Close(websocket.StatusTryAgainLater, "dropped: too far behind")
	}
}
