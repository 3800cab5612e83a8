package dialplan

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// Channel is what a hook runs on: the channel the hook arrived on, whose
// variables carry the results and through which presence is written.
type Channel interface {
	presence.Variables
}

// HintReader answers hint/get; *hints.Table is one. Nil: every hint/get
// answers NOT_FOUND.
type HintReader interface {
	Get(context, exten string) (hints.State, bool)
}

// The result variables every hook leaves on the channel.
const (
	VarResult      = "PRESENCED_RESULT"
	VarError       = "PRESENCED_ERROR"
	VarErrorText   = "PRESENCED_ERROR_TEXT"
	VarState       = "PRESENCED_STATE"
	VarSubtype     = "PRESENCED_SUBTYPE"
	VarMessage     = "PRESENCED_MESSAGE"
	VarHintState   = "PRESENCED_HINT_STATE"
	VarDeviceState = "PRESENCED_DEVICE_STATE"
	// The forward hooks: each forward's destination while it is on, ""
	// while it is off.
	VarFwdUnconditional = "PRESENCED_FWD_UNCONDITIONAL"
	VarFwdBusy          = "PRESENCED_FWD_BUSY"
	VarFwdNoAnswer      = "PRESENCED_FWD_NOANSWER"
)

// ForwardKeeper keeps the users' call forwards (*forward.Service). Nil:
// the forward hooks answer NOT_FOUND.
type ForwardKeeper interface {
	Get(user string) forward.Forwards
	Set(ctx context.Context, user string, k forward.Kind, on bool, destination string) (forward.Forwards, error)
}

// Hooks runs the dialplan hooks.
type Hooks struct {
	Presence *presence.Service
	Hints    HintReader    // optional
	Forwards ForwardKeeper // optional
	Now      func() time.Time
}

// Var is one channel variable set by a hook.
type Var struct{ Name, Value string }

// Result is the outcome of one hook, for logs and metrics.
type Result struct {
	Command string
	User    string
	Err     error // nil on success; presence.ErrorCode gives its code
	Vars    []Var // the data variables set (not the result variables)
}

// Code returns the result code: "OK" or the error code.
func (r Result) Code() string {
	if r.Err == nil {
		return "OK"
	}
	return string(presence.ErrorCode(r.Err))
}

type hook struct {
	params []string
	run    func(h *Hooks, ctx context.Context, ch Channel, user string, p map[string]string) ([]Var, error)
	noUser bool // the hook does not act on a user (hint/get)
}

// hookTable is the command table of DESIGN.md "The dialplan hook surface".
// It is never modified.
var hookTable = map[string]hook{
	"presence/set":     {params: []string{"user", "state", "subtype", "message", "for"}, run: (*Hooks).set},
	"presence/get":     {params: []string{"user"}, run: (*Hooks).get},
	"presence/toggle":  {params: []string{"user", "state", "subtype", "message"}, run: (*Hooks).toggle},
	"presence/restore": {params: []string{"user"}, run: (*Hooks).restore},
	"dnd/on":           {params: []string{"user", "message"}, run: (*Hooks).dndOn},
	"dnd/off":          {params: []string{"user"}, run: (*Hooks).dndOff},
	"dnd/toggle":       {params: []string{"user", "message"}, run: (*Hooks).dndToggle},
	"hint/get":         {params: []string{"exten"}, run: (*Hooks).hintGet, noUser: true},
	"forward/get":      {params: []string{"user"}, run: (*Hooks).forwardGet},
	"forward/set":      {params: []string{"user", "kind", "destination"}, run: (*Hooks).forwardSet},
	"forward/off":      {params: []string{"user", "kind"}, run: (*Hooks).forwardOff},
}

// IsCommand reports whether name is a hook command.
func IsCommand(name string) bool {
	_, ok := hookTable[name]
	return ok
}

// Commands lists the hook commands.
func Commands() []string {
	var out []string
	for c := range hookTable {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Handle parses and runs one hook and sets the result variables on ch:
// PRESENCED_RESULT last, so a dialplan never sees a result without its
// data. It returns what happened; failures to set the variables (the
// channel is gone) are in Result.Err when the hook itself succeeded.
func (h *Hooks) Handle(ctx context.Context, ch Channel, script string, args []string, caller string) Result {
	// A write answers once its change is in the change log (the presence
	// and forward services wait for it).
	res := h.run(ctx, ch, script, args, caller)
	if err := h.setResult(ctx, ch, res); err != nil && res.Err == nil {
		res.Err = presence.WrapError(presence.CodeUnavailable, err, "could not set the result variables")
	}
	return res
}

// Refuse answers a hook whose request could not be read (a FastAGI
// argument holding a line break): the result variables say why, and
// nothing else is done.
func (h *Hooks) Refuse(ctx context.Context, ch Channel, script string, err error) Result {
	req, _ := ParseRequest(script, nil, "")
	res := Result{Command: req.Command, Err: err}
	if serr := h.setResult(ctx, ch, res); serr != nil {
		res.Err = presence.WrapError(presence.CodeUnavailable, serr, "could not set the result variables")
	}
	return res
}

func (h *Hooks) run(ctx context.Context, ch Channel, script string, args []string, caller string) Result {
	req, err := ParseRequest(script, args, caller)
	res := Result{Command: req.Command}
	if err != nil {
		res.Err = err
		return res
	}
	hk, ok := hookTable[req.Command]
	if !ok {
		res.Err = presence.Errorf(presence.CodeNotFound, "unknown hook %q (known: %s)", clip.Clip(req.Command), strings.Join(Commands(), ", "))
		return res
	}
	p, err := bind(req.Command, hk.params, req)
	if err != nil {
		res.Err = err
		return res
	}
	if !hk.noUser {
		res.User = p["user"]
		if res.User == "" {
			res.User = req.Caller
		}
		if res.User == "" {
			res.Err = presence.Errorf(presence.CodeInvalidUser, "no user given and the channel has no caller number")
			return res
		}
		if err := presence.ValidateUser(res.User); err != nil {
			res.Err = err
			return res
		}
	}
	res.Vars, res.Err = hk.run(h, ctx, ch, res.User, p)
	return res
}

func (h *Hooks) setResult(ctx context.Context, ch Channel, res Result) error {
	vars := res.Vars
	if res.Err != nil {
		vars = []Var{
			{VarError, string(presence.ErrorCode(res.Err))},
			{VarErrorText, presence.ErrorMessage(res.Err)},
			{VarResult, "ERROR"},
		}
	} else {
		// Clear a previous hook's error, so ${PRESENCED_ERROR} is never stale.
		vars = append(vars, Var{VarError, ""}, Var{VarErrorText, ""}, Var{VarResult, "OK"})
	}
	for _, v := range vars {
		if err := ch.SetVariable(ctx, v.Name, channelText(v.Value)); err != nil {
			return err
		}
	}
	return nil
}

// channelText makes text safe for a channel variable set over AGI, which
// cannot carry line breaks or NUL: those become spaces.
func channelText(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

func presenceVars(v presence.Value) []Var {
	return []Var{{VarState, v.State.String()}, {VarSubtype, v.Subtype}, {VarMessage, v.Message}}
}

func writer(ch Channel) presence.Writer { return presence.VariableWriter{Channel: ch} }

// value builds a presence value from a hook's state, subtype and message;
// the service validates the text.
func value(p map[string]string) (presence.Value, error) {
	st, err := presence.ParseState(p["state"])
	return presence.Value{State: st, Subtype: p["subtype"], Message: p["message"]}, err
}

func (h *Hooks) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Hooks) set(ctx context.Context, ch Channel, user string, p map[string]string) ([]Var, error) {
	v, err := value(p)
	if err != nil {
		return nil, err
	}
	if p["for"] != "" {
		d, err := presence.ParseFor(p["for"])
		if err != nil {
			return nil, err
		}
		v.Expires = h.now().Add(d)
	}
	got, err := h.Presence.Set(ctx, writer(ch), user, v)
	return presenceVars(got), err
}

func (h *Hooks) get(ctx context.Context, ch Channel, user string, _ map[string]string) ([]Var, error) {
	got, err := h.Presence.Get(ctx, writer(ch), user)
	return presenceVars(got), err
}

func (h *Hooks) toggle(ctx context.Context, ch Channel, user string, p map[string]string) ([]Var, error) {
	v, err := value(p)
	if err != nil {
		return nil, err
	}
	got, err := h.Presence.Toggle(ctx, writer(ch), user, v)
	return presenceVars(got), err
}

func (h *Hooks) restore(ctx context.Context, ch Channel, user string, _ map[string]string) ([]Var, error) {
	got, err := h.Presence.Restore(ctx, writer(ch), user)
	return presenceVars(got), err
}

// dnd is the presence of the dnd hooks; the service validates it.
func dnd(p map[string]string) presence.Value {
	return presence.Value{State: presence.DND, Message: p["message"]}
}

// The dnd hooks are presence hooks with the state dnd; the presence
// service drives the DND device (BUSY exactly while the presence is dnd,
// whatever path put it there).
func (h *Hooks) dndOn(ctx context.Context, ch Channel, user string, p map[string]string) ([]Var, error) {
	got, err := h.Presence.Set(ctx, writer(ch), user, dnd(p))
	return presenceVars(got), err
}

func (h *Hooks) dndOff(ctx context.Context, ch Channel, user string, _ map[string]string) ([]Var, error) {
	got, err := h.Presence.Off(ctx, writer(ch), user, presence.DND)
	return presenceVars(got), err
}

func (h *Hooks) dndToggle(ctx context.Context, ch Channel, user string, p map[string]string) ([]Var, error) {
	got, err := h.Presence.Toggle(ctx, writer(ch), user, dnd(p))
	return presenceVars(got), err
}

func (h *Hooks) hintGet(_ context.Context, _ Channel, _ string, p map[string]string) ([]Var, error) {
	exten, context, err := hints.ParseHintRef(p["exten"])
	if err != nil {
		return nil, err
	}
	var st hints.State
	ok := false
	if h.Hints != nil {
		st, ok = h.Hints.Get(context, exten)
	}
	if !ok {
		return nil, presence.Errorf(presence.CodeNotFound, "there is no hint %s@%s", exten, context)
	}
	vars := append([]Var{{VarHintState, st.Extension.String()}, {VarDeviceState, st.Device.String()}}, presenceVars(st.Presence)...)
	if st.PresenceInvalid {
		vars[2].Value = "invalid" // Asterisk could not evaluate any of the hint's providers
	}
	return vars, nil
}

// forwardVars are the three forwards' variables: each one's destination
// while it is on.
func forwardVars(f forward.Forwards) []Var {
	return []Var{{VarFwdUnconditional, f.Unconditional.Active()}, {VarFwdBusy, f.Busy.Active()}, {VarFwdNoAnswer, f.NoAnswer.Active()}}
}

func (h *Hooks) forwards() (ForwardKeeper, error) {
	if h.Forwards == nil {
		return nil, presence.Errorf(presence.CodeNotFound, "call forwards are not kept here")
	}
	return h.Forwards, nil
}

// forwardGet reads a user's forwards into variables, for the dialplan to
// follow: the unconditional one before its Dial, the busy and no-answer
// ones after it, by DIALSTATUS.
func (h *Hooks) forwardGet(_ context.Context, _ Channel, user string, _ map[string]string) ([]Var, error) {
	fk, err := h.forwards()
	if err != nil {
		return nil, err
	}
	return forwardVars(fk.Get(user)), nil
}

// forwardSet turns a forward on, to destination (empty: the one it had).
func (h *Hooks) forwardSet(ctx context.Context, _ Channel, user string, p map[string]string) ([]Var, error) {
	return h.forwardTo(ctx, user, p, true)
}

func (h *Hooks) forwardOff(ctx context.Context, _ Channel, user string, p map[string]string) ([]Var, error) {
	return h.forwardTo(ctx, user, p, false)
}

func (h *Hooks) forwardTo(ctx context.Context, user string, p map[string]string, on bool) ([]Var, error) {
	fk, err := h.forwards()
	if err != nil {
		return nil, err
	}
	k, err := forward.ParseKind(p["kind"])
	if err != nil {
		return nil, err
	}
	f, err := fk.Set(ctx, user, k, on, p["destination"])
	if err != nil {
		return nil, err
	}
	return forwardVars(f), nil
}
