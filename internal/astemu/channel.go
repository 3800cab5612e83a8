package astemu

import (
	"context"
	"strings"
	"sync"
)

// Channel is a channel's variable space on an emulated Asterisk: names
// ending in ")" are dialplan functions, anything else a channel variable.
// It satisfies presence.Variables for in-process tests.
type Channel struct {
	Ast  *Asterisk
	mu   sync.Mutex
	vars map[string]string
}

// NewChannel returns a channel on ast.
func NewChannel(ast *Asterisk) *Channel { return &Channel{Ast: ast, vars: map[string]string{}} }

// Get reads a variable or function.
func (c *Channel) Get(name string) (string, bool) {
	if strings.HasSuffix(name, ")") {
		return c.Ast.ReadFunction(name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vars[name]
	return v, ok
}

// Set writes a variable or function; like Asterisk, it does not say
// whether a function accepted the value.
func (c *Channel) Set(name, value string) {
	if strings.HasSuffix(name, ")") {
		c.Ast.WriteFunction(name, value)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vars[name] = value
}

// Vars returns a copy of the channel variables.
func (c *Channel) Vars() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.vars))
	for k, v := range c.vars {
		out[k] = v
	}
	return out
}

// GetVariable implements presence.Variables.
func (c *Channel) GetVariable(_ context.Context, name string) (string, bool, error) {
	v, ok := c.Get(name)
	return v, ok, nil
}

// SetVariable implements presence.Variables.
func (c *Channel) SetVariable(_ context.Context, name, value string) error {
	c.Set(name, value)
	return nil
}
