package ami

import (
	"context"
	"errors"
	"strings"

	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/core/presence"
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
	return outcome(err, "could not write presence over AMI", func(msg string) error {
		return presence.Errorf(presence.CodeAsteriskRejected, "Asterisk refused the presence of %s: %s", provider, msg)
	})
}

// outcome maps an action's error: Asterisk's refusal, in its words, by
// refused; any other (AMI away, the connection lost) as UNAVAILABLE.
func outcome(err error, unavailable string, refused func(msg string) error) error {
	var ae *ActionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return refused(ae.Message)
	}
	return presence.WrapError(presence.CodeUnavailable, err, unavailable)
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

// Originate rings device (a channel technology and resource, such as
// PJSIP/1001) and, once it answers, sends it to exten in context: click to
// dial (BEHAVIOUR.md 4.17). It is asynchronous: Asterisk answers when the
// request is queued (an exten not in the dialplan is refused at once);
// whether the phone answered comes later, and shows as the call does.
// No CallerID is given: Asterisk shows the Originate's caller ID to both
// the phone and the party it dials, so the party would see its own
// number; without it, the party sees the user's caller ID.
func (w Writer) Originate(ctx context.Context, device, dialContext, exten string) error {
	for _, v := range []string{device, dialContext, exten} {
		if v == "" || strings.ContainsAny(v, "\r\n") {
			return presence.Errorf(presence.CodeInvalidArgument, "cannot originate with %q", v)
		}
	}
	c, err := w.conn()
	if err != nil {
		return err
	}
	a := goami2.NewAction("Originate")
	a.AddField("Channel", device)
	a.AddField("Context", dialContext)
	a.AddField("Exten", exten)
	a.AddField("Priority", "1")
	a.AddField("Async", "true")
	_, _, err = c.action(ctx, a, false)
	return outcome(err, "could not dial over AMI", func(msg string) error {
		return presence.Errorf(presence.CodeAsteriskRejected, "Asterisk refused to dial %s from %s: %s", exten, device, msg)
	})
}

// Hangup hangs up a channel.
func (w Writer) Hangup(ctx context.Context, channel string) error {
	// "/.../" would be a regular expression to Asterisk, hanging up
	// every channel it matches.
	if channel == "" || strings.ContainsAny(channel, "\r\n") || (len(channel) > 1 && strings.HasPrefix(channel, "/") && strings.HasSuffix(channel, "/")) {
		return presence.Errorf(presence.CodeInvalidArgument, "cannot hang up %q", channel)
	}
	c, err := w.conn()
	if err != nil {
		return err
	}
	a := goami2.NewAction("Hangup")
	a.AddField("Channel", channel)
	_, _, err = c.action(ctx, a, false)
	return outcome(err, "could not hang up over AMI", func(msg string) error {
		return presence.Errorf(presence.CodeAsteriskRejected, "Asterisk did not hang up %s: %s", channel, msg)
	})
}

// DPMARespond answers a phone app's request (DPMAMessageResponse, JSON).
// The response is one line of JSON: a line break would end the frame.
func (w Writer) DPMARespond(ctx context.Context, requestID, response string) error {
	if strings.ContainsAny(requestID+response, "\r\n") {
		return presence.Errorf(presence.CodeInvalidArgument, "a DPMA response holds a line break")
	}
	c, err := w.conn()
	if err != nil {
		return err
	}
	a := goami2.NewAction("DPMAMessageResponse")
	a.AddField("Response", response)
	a.AddField("Format", "JSON")
	a.AddField("RequestID", requestID)
	_, _, err = c.action(ctx, a, false)
	return outcome(err, "could not answer a phone app over AMI", func(msg string) error {
		return presence.Errorf(presence.CodeAsteriskRejected, "DPMA refused the response: %s", msg)
	})
}

// DPMASend pushes a message to a phone app (DPMAMessageSend).
func (w Writer) DPMASend(ctx context.Context, method, phone, message string) error {
	if strings.ContainsAny(method+phone+message, "\r\n") {
		return presence.Errorf(presence.CodeInvalidArgument, "a DPMA message holds a line break")
	}
	c, err := w.conn()
	if err != nil {
		return err
	}
	a := goami2.NewAction("DPMAMessageSend")
	a.AddField("Method", method)
	a.AddField("Message", message)
	a.AddField("PhoneName", phone)
	_, _, err = c.action(ctx, a, false)
	return outcome(err, "could not push to a phone app over AMI", func(msg string) error {
		return presence.Errorf(presence.CodeAsteriskRejected, "DPMA refused the message: %s", msg)
	})
}
