package presence

import (
	"context"
	"fmt"
	"strings"
)

// Writer writes presence to Asterisk and reads back what Asterisk now holds.
// The channel a hook arrived on is one (see VariableWriter); the ARI global
// variable writer will be another.
type Writer interface {
	// WritePresence sets PRESENCE_STATE(provider) to the encoded value.
	WritePresence(ctx context.Context, provider, encoded string) error
	// ReadPresence returns what Asterisk evaluates PRESENCE_STATE(provider,...) to.
	ReadPresence(ctx context.Context, provider string) (Value, error)
}

// Variables is a channel on which dialplan variables and functions can be
// read and written: a FastAGI session, a Stasis channel.
type Variables interface {
	// GetVariable returns the value and whether Asterisk had one (AGI
	// "result=1" versus "result=0").
	GetVariable(ctx context.Context, name string) (string, bool, error)
	SetVariable(ctx context.Context, name, value string) error
}

// VariableWriter writes and reads presence through the PRESENCE_STATE()
// dialplan function on a channel.
type VariableWriter struct{ Channel Variables }

var _ Writer = VariableWriter{}

// WritePresence sets PRESENCE_STATE(provider). Asterisk answers success even
// when it rejected the value, which is why the service reads back.
func (w VariableWriter) WritePresence(ctx context.Context, provider, encoded string) error {
	if _, err := ParseProvider(provider); err != nil {
		return err
	}
	if err := w.Channel.SetVariable(ctx, "PRESENCE_STATE("+provider+")", encoded); err != nil {
		return WrapError(CodeUnavailable, err, "could not write presence to Asterisk")
	}
	return nil
}

// Evaluator is a channel that can evaluate a whole dialplan expression in
// one command (AGI's GET FULL VARIABLE): a presence is then read in one
// round trip instead of three (BEHAVIOUR.md 4.19).
type Evaluator interface {
	Evaluate(ctx context.Context, expr string) (string, error)
}

// ReadPresence reads the state, and subtype and message with the 'e' option:
// Asterisk then answers in base64, so text with parentheses, newlines or
// bytes that are not UTF-8 comes through the AGI reply line intact.
func (w VariableWriter) ReadPresence(ctx context.Context, provider string) (Value, error) {
	if _, err := ParseProvider(provider); err != nil {
		return Value{}, err
	}
	fn := "PRESENCE_STATE(" + provider + ","
	if ev, ok := w.Channel.(Evaluator); ok {
		return readEvaluated(ctx, ev, provider, fn)
	}
	state, ok, err := w.Channel.GetVariable(ctx, fn+"value)")
	if err != nil {
		return Value{}, WrapError(CodeUnavailable, err, "could not read presence from Asterisk")
	}
	if !ok {
		return Value{}, Errorf(CodeUnavailable, "Asterisk cannot evaluate PRESENCE_STATE (is func_presencestate loaded?)")
	}
	var v Value
	if v.State, err = ParseState(state); err != nil {
		// Asterisk says "invalid" for a stored value it cannot parse; to
		// presenced that is a provider without presence.
		v.State = NotSet
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"subtype", &v.Subtype}, {"message", &v.Message}} {
		raw, _, err := w.Channel.GetVariable(ctx, fn+f.name+",e)")
		if err != nil {
			return Value{}, WrapError(CodeUnavailable, err, "could not read presence from Asterisk")
		}
		if *f.dst, err = DecodeField(raw); err != nil {
			return Value{}, fmt.Errorf("reading the %s of %s: %w", f.name, provider, err)
		}
	}
	return v, nil
}

// readEvaluated reads the three fields with one expression. Subtype and
// message come base64-encoded, so they hold no comma: the answer splits
// into exactly three. A function that is not loaded evaluates to the empty
// string, so "(,,)" means func_presencestate is missing, never a presence.
func readEvaluated(ctx context.Context, ev Evaluator, provider, fn string) (Value, error) {
	out, err := ev.Evaluate(ctx, "${"+fn+"value)},${"+fn+"subtype,e)},${"+fn+"message,e)}")
	if err != nil {
		return Value{}, WrapError(CodeUnavailable, err, "could not read presence from Asterisk")
	}
	f := strings.Split(out, ",")
	if len(f) != 3 || f[0] == "" {
		return Value{}, Errorf(CodeUnavailable, "Asterisk cannot evaluate PRESENCE_STATE (is func_presencestate loaded?)")
	}
	var v Value
	if v.State, err = ParseState(f[0]); err != nil {
		v.State = NotSet // "invalid": a stored value Asterisk cannot parse
	}
	if v.Subtype, err = DecodeField(f[1]); err != nil {
		return Value{}, fmt.Errorf("reading the subtype of %s: %w", provider, err)
	}
	if v.Message, err = DecodeField(f[2]); err != nil {
		return Value{}, fmt.Errorf("reading the message of %s: %w", provider, err)
	}
	return v, nil
}
