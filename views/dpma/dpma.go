// Package dpma answers Digium/Sangoma phone apps over DPMA, the Digium
// Phone Module's messaging: a phone app's pbx.request of one of presenced's
// methods reaches presenced as an AMI DPMAMessage event and is answered
// with a DPMAMessageResponse; changes are pushed to the phones that
// subscribed with DPMAMessageSend. The methods (Parameters and Response
// are JSON):
//
//	presenced.presence.get  {"user":"1001"}                          -> {"user":"1001","presence":{"state":"away",...}}
//	presenced.presence.set  {"user":"1001","state":"away","message":"Lunch"} -> the same, after the change
//	presenced.hints         {"hints":["1001@internal","1002"]}       -> {"hints":[{"exten","context","state","presence"},...]}
//	presenced.subscribe     {"phonename":"alice","user":"1001","hints":[...]} -> {"subscribed":true}
//
// then presenced.update messages to the phone: {"type":"hint","hint":{...}}
// or {"type":"presence","user":"1001","presence":{...}}. An error is
// {"error":{"code":"INVALID_ARGUMENT","message":"..."}}.
//
// DPMA tells presenced nothing of which phone asks: a phone app says its
// user and phone name in the parameters (app.getConfig gives both). An
// admin turns DPMA on (PRESENCED_DPMA) only where phones are trusted as
// much as their own DND key.
package dpma

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
	"github.com/presenced/presenced/internal/names"
	"github.com/presenced/presenced/internal/ratelimit"
)

// The methods presenced registers, and the one it pushes.
const (
	MethodGet       = "presenced.presence.get"
	MethodSet       = "presenced.presence.set"
	MethodHints     = "presenced.hints"
	MethodSubscribe = "presenced.subscribe"
	MethodUpdate    = "presenced.update"
)

// Presence reads and sets presence as the REST API does.
type Presence interface {
	Get(user string) (presence.Value, bool)
	Set(ctx context.Context, user string, v presence.Value) (got presence.Value, pending bool, err error)
}

// Hints gives the hints' states (*hints.Table).
type Hints interface {
	Get(context, exten string) (hints.State, bool)
}

// Transport answers and pushes over AMI (ami.Writer).
type Transport interface {
	DPMARespond(ctx context.Context, requestID, response string) error
	DPMASend(ctx context.Context, method, phone, message string) error
}

// Config configures a Bridge.
type Config struct {
	Presence  Presence
	Hints     Hints
	Hub       *watch.Hub
	Transport Transport
	Log       zerolog.Logger
	Now       func() time.Time // default time.Now
}

// Bridge is presenced's DPMA application (an ami.DPMASink).
type Bridge struct {
	cfg   Config
	mu    sync.Mutex
	subs  map[string]subscription // by phone name
	limit *ratelimit.Keyed        // subscribes, per phone name
}

type subscription struct {
	user    string
	hints   map[string]bool // hint keys
	renewed time.Time       // its last subscribe
}

// The bounds of subscriptions. DPMA does not say which phone sent a
// request, so a phone app names itself; these keep one app (or anything
// that can send DPMA messages) from taking over what another phone gets,
// or from making one change into thousands of AMI actions:
//   - at most maxPhones phones are subscribed at once, each to at most
//     maxHints hints and one user;
//   - a phone subscribed for a user stays that user's until it has not
//     renewed its subscription for subscriptionHold: another user's
//     subscription under its name is refused until then;
//   - a phone name subscribes at most subscribeBurst times at once, then
//     once every subscribeEvery.
const (
	maxPhones        = 1000
	subscriptionHold = time.Hour
	subscribeEvery   = 10 * time.Second
	subscribeBurst   = 10
)

// New returns a bridge; Run pushes changes to subscribed phones.
func New(cfg Config) *Bridge {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Bridge{cfg: cfg, subs: map[string]subscription{}, limit: ratelimit.New(subscribeEvery, subscribeBurst, 2*maxPhones)}
}

// DPMAMethods are the methods to register.
func (b *Bridge) DPMAMethods() []string {
	return []string{MethodGet, MethodSet, MethodHints, MethodSubscribe}
}

// DPMARequest answers one request, on a goroutine of its own.
func (b *Bridge) DPMARequest(requestID, method, format, params string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		res := b.Answer(ctx, method, format, params)
		out, _ := json.Marshal(res)
		if err := b.cfg.Transport.DPMARespond(ctx, requestID, string(out)); err != nil {
			b.cfg.Log.Warn().Err(err).Str("method", clip.Clip(method)).Msg("DPMA: cannot answer a phone app")
		}
	}()
}

// ErrorBody is an error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorBody(err error) ErrorBody {
	var e ErrorBody
	e.Error.Code, e.Error.Message = string(presence.ErrorCode(err)), presence.ErrorMessage(err)
	return e
}

// params are every method's parameters (each method reads its own).
type params struct {
	User      string   `json:"user"`
	State     string   `json:"state"`
	Subtype   string   `json:"subtype"`
	Message   string   `json:"message"`
	Hints     []string `json:"hints"`
	PhoneName string   `json:"phonename"`
}

// maxHints bounds the hints of one request or subscription.
const maxHints = 100

// Answer computes the answer to a request (the value to send as JSON).
func (b *Bridge) Answer(ctx context.Context, method, format, raw string) any {
	res, err := b.answer(ctx, method, format, raw)
	b.cfg.Log.Debug().Str("method", clip.Clip(method)).Str("result", string(presence.ErrorCode(err))).Msg("DPMA request")
	if err != nil {
		return errorBody(err)
	}
	return res
}

func (b *Bridge) answer(ctx context.Context, method, format, raw string) (any, error) {
	if !strings.EqualFold(format, "JSON") {
		return nil, presence.Errorf(presence.CodeInvalidArgument, "format %q: presenced's methods take JSON", clip.Clip(format))
	}
	var p params
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, presence.Errorf(presence.CodeInvalidArgument, "the parameters are not a JSON object of presenced's: %s", clip.Clip(err.Error()))
	}
	switch method {
	case MethodGet:
		if err := presence.ValidateUser(p.User); err != nil {
			return nil, err
		}
		v, _ := b.cfg.Presence.Get(p.User)
		return presenceOut{User: p.User, Presence: v}, nil
	case MethodSet:
		if err := presence.ValidateUser(p.User); err != nil {
			return nil, err
		}
		st, err := presence.ParseState(p.State)
		if err != nil {
			return nil, err
		}
		v := presence.Value{State: st, Subtype: p.Subtype, Message: p.Message}
		if _, _, err := b.cfg.Presence.Set(ctx, p.User, v); err != nil {
			return nil, err
		}
		got, _ := b.cfg.Presence.Get(p.User)
		return presenceOut{User: p.User, Presence: got}, nil
	case MethodHints:
		keys, err := hintKeys(p.Hints)
		if err != nil {
			return nil, err
		}
		out := hintsOut{Hints: []hintOut{}}
		for _, k := range keys {
			exten, context, _ := hints.ParseHintRef(k)
			if st, ok := b.cfg.Hints.Get(context, exten); ok {
				out.Hints = append(out.Hints, hintView(st))
			}
		}
		return out, nil
	case MethodSubscribe:
		if !names.Valid(p.PhoneName) {
			return nil, presence.Errorf(presence.CodeInvalidArgument, "phonename: the phone's name in res_digium_phone.conf (letters, digits, -, _, ., at most 64)")
		}
		if p.User != "" {
			if err := presence.ValidateUser(p.User); err != nil {
				return nil, err
			}
		}
		keys, err := hintKeys(p.Hints)
		if err != nil {
			return nil, err
		}
		if err := b.limit.Check(p.PhoneName, "subscriptions of the phone "+p.PhoneName); err != nil {
			return nil, presence.WrapError(presence.CodeRateLimited, err, err.Error())
		}
		now := b.cfg.Now()
		sub := subscription{user: p.User, hints: map[string]bool{}, renewed: now}
		for _, k := range keys {
			sub.hints[k] = true
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		old, held := b.subs[p.PhoneName]
		switch {
		case held && old.user != p.User && now.Sub(old.renewed) < subscriptionHold:
			return nil, presence.Errorf(presence.CodeNotAllowed, "the phone %s is subscribed for another user; it may change user once it has not renewed for %v", p.PhoneName, subscriptionHold)
		case !held && len(b.subs) >= maxPhones:
			b.expire(now)
			if len(b.subs) >= maxPhones {
				return nil, presence.Errorf(presence.CodeUnavailable, "%d phones are subscribed, the most presenced serves", maxPhones)
			}
		}
		b.subs[p.PhoneName] = sub
		return map[string]bool{"subscribed": true}, nil
	}
	return nil, presence.Errorf(presence.CodeNotFound, "unknown method %q", clip.Clip(method))
}

// expire forgets the subscriptions not renewed for subscriptionHold;
// b.mu is held.
func (b *Bridge) expire(now time.Time) {
	for phone, s := range b.subs {
		if now.Sub(s.renewed) >= subscriptionHold {
			delete(b.subs, phone)
		}
	}
}

// hintKeys checks hint references and returns their keys.
func hintKeys(refs []string) ([]string, error) {
	if len(refs) > maxHints {
		return nil, presence.Errorf(presence.CodeInvalidArgument, "at most %d hints", maxHints)
	}
	var out []string
	for _, r := range refs {
		exten, context, err := hints.ParseHintRef(r)
		if err != nil {
			return nil, err
		}
		out = append(out, exten+"@"+context)
	}
	return out, nil
}

type presenceOut struct {
	User     string         `json:"user"`
	Presence presence.Value `json:"presence"`
}

type hintOut struct {
	Exten    string         `json:"exten"`
	Context  string         `json:"context"`
	State    string         `json:"state"`
	Presence presence.Value `json:"presence"`
}

type hintsOut struct {
	Hints []hintOut `json:"hints"`
}

func hintView(st hints.State) hintOut {
	return hintOut{Exten: st.Exten, Context: st.Context, State: st.Extension.String(), Presence: st.Presence}
}

// update is a message pushed to a phone.
type update struct {
	Type     string          `json:"type"`
	Hint     *hintOut        `json:"hint,omitempty"`
	User     string          `json:"user,omitempty"`
	Presence *presence.Value `json:"presence,omitempty"`
}

// Run pushes the changes of what phones subscribed to until ctx ends.
func (b *Bridge) Run(ctx context.Context) {
	// Far behind (dropped), what phones missed is lost: Follow goes on
	// from now; phones ask again for what they show.
	_ = b.cfg.Hub.Follow(ctx, watch.Filter{All: true}, func(watch.Snapshot) {}, func(evs []*watch.Event) {
		for _, ev := range evs {
			b.push(ctx, ev)
		}
	})
}

func (b *Bridge) push(ctx context.Context, ev *watch.Event) {
	var msg update
	var match func(subscription) bool
	switch val := ev.Value.(type) {
	case hints.State:
		if val.Site != "" || val.Removed {
			return
		}
		h := hintView(val)
		msg = update{Type: "hint", Hint: &h}
		key := val.Exten + "@" + val.Context
		match = func(s subscription) bool { return s.hints[key] }
	case hints.ProviderPresence:
		user, err := presence.ParseProvider(ev.Key)
		if err != nil {
			return
		}
		v := val.Value
		msg = update{Type: "presence", User: user, Presence: &v}
		match = func(s subscription) bool { return s.user == user }
	default:
		return
	}
	b.mu.Lock()
	var phones []string
	for phone, s := range b.subs {
		if match(s) {
			phones = append(phones, phone)
		}
	}
	b.mu.Unlock()
	if len(phones) == 0 {
		return
	}
	data, _ := json.Marshal(msg)
	for _, phone := range phones {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := b.cfg.Transport.DPMASend(pctx, MethodUpdate, phone, string(data)); err != nil {
			b.cfg.Log.Warn().Err(err).Str("phone", phone).Msg("DPMA: cannot push a change to a phone app")
		}
		cancel()
	}
}
