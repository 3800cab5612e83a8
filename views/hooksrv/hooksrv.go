// Package hooksrv serves the dialplan hooks on their two transports: a
// FastAGI session (fastagi.Handler) and a channel that entered the Stasis
// application (ari.Feed's OnStasis). It puts who asks in the context, runs
// the hook (dialplan.Hooks), writes the one log line a hook gets and
// counts it. fastagi and ari know nothing of the hooks, and dialplan
// nothing of the transports: this is where they meet.
package hooksrv

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ari"
	"github.com/presenced/presenced/asterisk/fastagi"
	"github.com/presenced/presenced/core/dialplan"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/actor"
)

// Server runs hooks for the transports.
type Server struct {
	hooks    *dialplan.Hooks
	log      zerolog.Logger
	count    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a server of hooks; its metrics are registered in reg
// (presenced_hooks_total, presenced_hook_duration_seconds).
func New(hooks *dialplan.Hooks, log zerolog.Logger, reg prometheus.Registerer) *Server {
	s := &Server{hooks: hooks, log: log,
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presenced_hooks_total", Help: "Dialplan hooks run, by transport, command and result code.",
		}, []string{"transport", "command", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "presenced_hook_duration_seconds", Help: "Time a dialplan hook took, result variables included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"transport"}),
	}
	reg.MustRegister(s.count, s.duration)
	return s
}

var _ fastagi.Handler = (*Server)(nil)

// ServeAGI runs one hook for a FastAGI session.
func (s *Server) ServeAGI(ctx context.Context, sess *fastagi.Session) {
	start := time.Now()
	channel := sess.Env.Get("agi_channel")
	if n := sess.Env.LineBreakArg; n > 0 {
		res := s.hooks.Refuse(ctx, sess, sess.Env.Script(), presence.Errorf(presence.CodeInvalidArgument,
			"argument %d holds a line break, which FastAGI cannot carry", n))
		s.done("fastagi", channel, res, start, nil)
		return
	}
	ctx = actor.With(ctx, actor.Actor{Door: "agi", Name: channel, Remote: sess.RemoteAddr()})
	res := s.hooks.Handle(ctx, sess, sess.Env.Script(), sess.Env.Args, sess.Env.Get("agi_callerid"))
	s.done("fastagi", channel, res, start, nil)
}

// StasisTimeout bounds one Stasis hook, continue included.
const StasisTimeout = 30 * time.Second

// ServeStasis runs one hook for a channel that entered the Stasis
// application (Stasis(presenced,presence/set,1001,away)), then sends the
// channel on to the next priority, whatever the hook's result.
func (s *Server) ServeStasis(ctx context.Context, ev ari.StasisStart) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, StasisTimeout)
	defer cancel()
	script, args := "", []string(nil)
	if len(ev.Args) > 0 {
		script, args = ev.Args[0], ev.Args[1:]
	}
	ctx = actor.With(ctx, actor.Actor{Door: "ari", Name: ev.Channel.ID})
	res := s.hooks.Handle(ctx, ev.Channel, script, args, ev.Caller)
	s.done("stasis", ev.Channel.ID, res, start, ev.Channel.Continue(ctx))
}

// done counts a hook and writes its one line: internal and unavailable
// errors with detail, at warn; others at info with the plain sentence.
func (s *Server) done(transport, channel string, res dialplan.Result, start time.Time, continueErr error) {
	took := time.Since(start)
	cmd := res.Command
	if !dialplan.IsCommand(cmd) {
		cmd = "unknown" // what callers type cannot grow the label set
	}
	s.count.WithLabelValues(transport, cmd, res.Code()).Inc()
	s.duration.WithLabelValues(transport).Observe(took.Seconds())
	ev := s.log.Info()
	if code := presence.ErrorCode(res.Err); code == presence.CodeInternal || code == presence.CodeUnavailable {
		ev = s.log.Warn().Err(res.Err)
	} else if res.Err != nil {
		ev = ev.Str("error", presence.ErrorMessage(res.Err))
	}
	for _, v := range res.Vars {
		if v.Name == dialplan.VarState {
			ev = ev.Str("state", v.Value)
		}
	}
	if continueErr != nil {
		ev = s.log.Warn().AnErr("continue", continueErr)
	}
	ev.Str("transport", transport).Str("command", res.Command).Str("user", res.User).
		Str("channel", channel).Str("result", res.Code()).Dur("took", took).Msg("hook")
}
