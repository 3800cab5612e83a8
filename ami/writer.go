package ami

import (
	"context"
	"errors"

	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/presence"
)

// Writer writes presence over AMI, for writes that have no channel (timed
// presence ending). Unlike ARI and AGI, AMI's Setvar says when
// PRESENCE_STATE rejected a value (BEHAVIOUR.md 4.2); the service still
// reads back with Getvar, which AMI evaluates without a channel.
type Writer struct{ Feed *Feed }

var _ presence.Writer = Writer{}

func (w Writer) conn() (*conn, error) {
	w.Feed.mu.Lock()
	defer w.Feed.mu.Unlock()
	if w.Feed.cur == nil {
		return nil, presence.Errorf(presence.CodeUnavailable, "AMI is not connected")
	}
	return w.Feed.cur, nil
}

// WritePresence sets PRESENCE_STATE(provider) with Setvar.
func (w Writer) WritePresence(ctx context.Context, provider, encoded string) error {
	if _, err := presence.ParseProvider(provider); err != nil {
		return err
	}
	c, err := w.conn()
	if err != nil {
		return err
	}
	a := goami2.NewAction("Setvar")
	a.AddField("Variable", "PRESENCE_STATE("+provider+")")
	a.AddField("Value", encoded)
	_, _, err = c.action(ctx, a, false)
	var ae *ActionError
	switch {
	case errors.As(err, &ae):
		return presence.Errorf(presence.CodeAsteriskRejected, "Asterisk refused the presence of %s: %s", provider, ae.Message)
	case err != nil:
		return presence.WrapError(presence.CodeUnavailable, err, "could not write presence over AMI")
	}
	return nil
}

// ReadPresence reads PRESENCE_STATE(provider,...) with Getvar.
func (w Writer) ReadPresence(ctx context.Context, provider string) (presence.Value, error) {
	if _, err := presence.ParseProvider(provider); err != nil {
		return presence.Value{}, err
	}
	return presence.VariableWriter{Channel: getvar{w}}.ReadPresence(ctx, provider)
}

// getvar lets presence.VariableWriter read through AMI Getvar.
type getvar struct{ w Writer }

func (g getvar) GetVariable(ctx context.Context, name string) (string, bool, error) {
	c, err := g.w.conn()
	if err != nil {
		return "", false, err
	}
	a := goami2.NewAction("Getvar")
	a.AddField("Variable", name)
	frames, _, err := c.action(ctx, a, false)
	var ae *ActionError
	switch {
	case errors.As(err, &ae):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return frames[0].Field("Value"), true, nil
}

func (g getvar) SetVariable(context.Context, string, string) error {
	return errors.New("ami: reading only")
}
