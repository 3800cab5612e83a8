package ari

import (
	"context"
	"errors"
	"net/url"

	"github.com/presenced/presenced/core/presence"
)

// StasisStart is a channel entering presenced's Stasis application:
// Stasis(presenced,presence/set,1001,away,,Lunch) has Args
// ["presence/set","1001","away","","Lunch"].
type StasisStart struct {
	Channel *Channel
	Caller  string // the channel's caller number; "" when none
	Args    []string
}

// Channel is a channel in presenced's Stasis application. Its variables
// are read and written over ARI, which evaluates dialplan functions on a
// channel in Stasis (BEHAVIOUR.md 4.2), so presence hooks run on it as on a
// FastAGI session.
type Channel struct {
	Client *Client
	ID     string
}

var _ presence.Variables = (*Channel)(nil)

func (c *Channel) path(op string) string { return "/channels/" + url.PathEscape(c.ID) + "/" + op }

// GetVariable reads a channel variable or evaluates a function. A variable
// that does not exist, and a function Asterisk cannot read, give ("", false).
func (c *Channel) GetVariable(ctx context.Context, name string) (string, bool, error) {
	var v struct{ Value string }
	err := c.Client.do(ctx, "GET", c.path("variable"), url.Values{"variable": {name}}, nil, &v)
	var he *HTTPError
	switch {
	case errors.As(err, &he) && he.Status == 404 && he.Message == "Provided variable was not found",
		errors.As(err, &he) && he.Status == 500 && he.Message == "Unable to read provided function":
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return v.Value, true, nil
}

// SetVariable sets a channel variable or writes a function, the name and
// value in a JSON body (no URL-encoding pitfalls: "+" stays "+").
func (c *Channel) SetVariable(ctx context.Context, name, value string) error {
	return c.Client.do(ctx, "POST", c.path("variable"), nil, map[string]string{"variable": name, "value": value}, nil)
}

// Continue sends the channel back to the dialplan, at the next priority.
func (c *Channel) Continue(ctx context.Context) error {
	return c.Client.do(ctx, "POST", c.path("continue"), nil, nil, nil)
}
