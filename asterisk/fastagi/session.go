package fastagi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/internal/clip"
)

// Session is one FastAGI connection. It is used by one goroutine, the
// handler's.
type Session struct {
	Env Env

	conn     net.Conn
	br       *bufio.Reader
	wbuf     []byte
	timeout  time.Duration
	deadline time.Time // the connection's current deadline
	hangups  int
	broken   error
	log      zerolog.Logger // the transcript, at debug level
	// base is the context the server gave the handler; its cancellation
	// already cuts the connection (see Server.serve), so commands run with
	// it need no watcher of their own.
	base context.Context
}

// RemoteAddr is the address of the Asterisk that opened the session.
func (s *Session) RemoteAddr() string {
	if s.conn == nil {
		return ""
	}
	return s.conn.RemoteAddr().String()
}

// HungUp reports whether Asterisk has sent HANGUP: the channel is gone.
// Variable commands still work after it; channel commands answer 511.
func (s *Session) HungUp() bool { return s.hangups > 0 }

// Command sends one command line and returns Asterisk's reply. The error
// is ErrInvalidCommand, ErrDeadChannel, *UsageError or *StatusError for a
// reply that is not 200, or an I/O error, after which the session is
// unusable and every further command returns the same error.
func (s *Session) Command(ctx context.Context, line string) (Reply, error) {
	if s.broken != nil {
		return Reply{}, s.broken
	}
	if !ValidArg(line) {
		return Reply{}, errors.New("fastagi: command contains a newline, carriage return or NUL")
	}
	if len(line) > MaxCommand {
		return Reply{}, fmt.Errorf("fastagi: command of %d bytes is longer than Asterisk reads (%d)", len(line), MaxCommand)
	}
	if err := s.armDeadline(ctx); err != nil {
		return Reply{}, s.fail(ctx, err)
	}
	if ctx != s.base {
		// A cancelled context ends a blocked read or write at once.
		stop := context.AfterFunc(ctx, func() { _ = s.conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}

	s.wbuf = append(append(s.wbuf[:0], line...), '\n')
	if _, err := s.conn.Write(s.wbuf); err != nil {
		return Reply{}, s.fail(ctx, err)
	}
	s.log.Debug().Str("command", line).Msg("agi sent")
	r, err := readReply(s.br, &s.hangups)
	if err != nil && r.Code == 0 {
		return Reply{}, s.fail(ctx, err)
	}
	s.log.Debug().Int("code", r.Code).Str("result", r.Result).Str("data", r.Data).Msg("agi received")
	return r, err
}

// armDeadline makes sure the connection's deadline is at most the
// command timeout away, and no later than ctx's. Moving a deadline costs a
// timer update, so a deadline that is still more than half the timeout away
// is kept: each command then has between half and all of the timeout.
func (s *Session) armDeadline(ctx context.Context) error {
	now := time.Now()
	d, hasCtx := ctx.Deadline()
	if hasCtx && d.Before(s.deadline) {
		s.deadline = d
		return s.conn.SetDeadline(d)
	}
	if s.deadline.Sub(now) > s.timeout/2 {
		return nil
	}
	s.deadline = now.Add(s.timeout)
	if hasCtx && d.Before(s.deadline) {
		s.deadline = d
	}
	return s.conn.SetDeadline(s.deadline)
}

// fail marks the session broken by an I/O error.
func (s *Session) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	s.broken = fmt.Errorf("fastagi: session with %s: %w", s.conn.RemoteAddr(), err)
	return s.broken
}

// GetVariable runs GET VARIABLE. It returns the value and whether Asterisk
// had one ("result=1" versus "result=0"). Function reads such as
// PRESENCE_STATE(CustomPresence:1001,value) work too.
func (s *Session) GetVariable(ctx context.Context, name string) (string, bool, error) {
	if !ValidArg(name) || name == "" {
		return "", false, fmt.Errorf("fastagi: invalid variable name %q", clip.Clip(name))
	}
	arg := name
	if !bare(name) {
		arg = Quote(name)
	}
	r, err := s.Command(ctx, "GET VARIABLE "+arg)
	if err != nil {
		return "", false, fmt.Errorf("getting %s: %w", clip.Clip(name), err)
	}
	return r.Data, r.Result == "1", nil
}

// Evaluate runs GET FULL VARIABLE: Asterisk evaluates the whole expression
// ("${A},${B(x)}") on the channel and answers its value, empty for what it
// cannot evaluate.
func (s *Session) Evaluate(ctx context.Context, expr string) (string, error) {
	if expr == "" || !ValidArg(expr) {
		return "", fmt.Errorf("fastagi: invalid expression %q", clip.Clip(expr))
	}
	r, err := s.Command(ctx, "GET FULL VARIABLE "+Quote(expr))
	if err != nil {
		return "", fmt.Errorf("evaluating %s: %w", clip.Clip(expr), err)
	}
	return r.Data, nil
}

// SetVariable runs SET VARIABLE with name and value quoted, so that any
// text without a newline arrives as it is. Asterisk answers "200 result=1"
// even when a function rejected the value: callers that care read back.
func (s *Session) SetVariable(ctx context.Context, name, value string) error {
	if name == "" || !ValidArg(name) {
		return fmt.Errorf("fastagi: invalid variable name %q", clip.Clip(name))
	}
	if !ValidArg(value) {
		return fmt.Errorf("fastagi: the value of %s contains a newline, carriage return or NUL, which AGI cannot carry", clip.Clip(name))
	}
	var b strings.Builder
	b.Grow(len("SET VARIABLE ") + len(name) + len(value) + 8)
	b.WriteString("SET VARIABLE ")
	b.WriteString(Quote(name))
	b.WriteByte(' ')
	b.WriteString(Quote(value))
	if _, err := s.Command(ctx, b.String()); err != nil {
		return fmt.Errorf("setting %s: %w", clip.Clip(name), err)
	}
	return nil
}
