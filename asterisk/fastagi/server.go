package fastagi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Handler serves one FastAGI session. When it returns, the server closes
// the connection and Asterisk continues the dialplan.
type Handler interface {
	ServeAGI(ctx context.Context, s *Session)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Session)

// ServeAGI calls f.
func (f HandlerFunc) ServeAGI(ctx context.Context, s *Session) { f(ctx, s) }

// Config configures a Server. Zero durations and sizes take the defaults.
type Config struct {
	Addr    string
	Handler Handler
	// Allow lists the client networks that may open sessions; empty allows
	// every client (FastAGI has no authentication of its own).
	Allow []netip.Prefix
	// MaxSessions caps concurrent sessions; further connections wait in the
	// listen backlog until a session ends (default 1024).
	MaxSessions int
	// EnvTimeout bounds the wait for the environment block (default 5s): a
	// client that connects and says nothing holds a slot no longer.
	EnvTimeout time.Duration
	// CommandTimeout bounds each command's write and reply (default 10s).
	CommandTimeout time.Duration
	// DrainTimeout is how long Close lets running sessions finish (default 5s).
	DrainTimeout time.Duration
	Log          zerolog.Logger
}

// Server is a FastAGI server: Open binds and starts accepting, Close drains.
type Server struct {
	cfg   Config
	ln    net.Listener
	sem   chan struct{}
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool // true once the handler runs
	once  sync.Once
	// readers recycles the per-session line readers (MaxLine bytes each).
	readers  sync.Pool
	rejected zerolog.Logger
	// Connections refused (not in Allow) and sessions that never sent a
	// whole environment, for metrics.
	refusedAllow, refusedEnv atomic.Uint64
}

// Refused returns how many connections were closed unserved: from a
// client outside Allow, and without a whole environment in time.
func (s *Server) Refused() (notAllowed, noEnvironment uint64) {
	return s.refusedAllow.Load(), s.refusedEnv.Load()
}

// NewServer returns a server for cfg.
func NewServer(cfg Config) *Server {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1024
	}
	if cfg.EnvTimeout <= 0 {
		cfg.EnvTimeout = 5 * time.Second
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, sem: make(chan struct{}, cfg.MaxSessions), ctx: ctx, stop: stop,
		done: make(chan struct{}), conns: map[net.Conn]bool{},
		// A scan of the port must not flood the log.
		rejected: cfg.Log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute}),
		readers:  sync.Pool{New: func() any { return bufio.NewReaderSize(nil, MaxLine) }},
	}
}

// Open binds the listen address and starts accepting; a bind error is
// returned here, at start.
func (s *Server) Open(context.Context) error {
	if s.cfg.Handler == nil {
		return errors.New("fastagi: no handler")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("fastagi: listening on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.acceptLoop()
	return nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// acceptLoop only accepts: a slot is taken before Accept, so at the cap new
// connections wait in the kernel's backlog, and every session (including
// reading its environment) runs in its own goroutine.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.done:
			return
		}
		conn, err := s.ln.Accept()
		if err != nil {
			<-s.sem
			select {
			case <-s.done:
				return
			default:
			}
			// Out of file descriptors and the like: wait and try again.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Log.Warn().Err(err).Dur("retry_in", backoff).Msg("fastagi accept failed")
			select {
			case <-time.After(backoff):
			case <-s.done:
				return
			}
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go s.serve(conn)
	}
}

func (s *Server) allowed(addr net.Addr) bool {
	if len(s.cfg.Allow) == 0 {
		return true
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) serve(conn net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.sem }()
	defer conn.Close()
	if !s.allowed(conn.RemoteAddr()) {
		s.refusedAllow.Add(1)
		s.rejected.Warn().Str("remote", conn.RemoteAddr().String()).Msg("fastagi client not in PRESENCED_AGI_ALLOW; connection closed")
		return
	}
	if !s.track(conn, false) {
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()

	br := s.readers.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() { br.Reset(nil); s.readers.Put(br) }()
	sess := &Session{conn: conn, br: br, timeout: s.cfg.CommandTimeout, base: s.ctx}
	// Server shutdown past the drain time cuts the session at once.
	stop := context.AfterFunc(s.ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(s.cfg.EnvTimeout)); err != nil {
		return
	}
	env, err := ReadEnv(sess.br)
	if err != nil {
		s.refusedEnv.Add(1)
		s.cfg.Log.Debug().Err(err).Str("remote", conn.RemoteAddr().String()).Msg("fastagi session ended before its environment")
		return
	}
	sess.Env = env
	if s.cfg.Log.GetLevel() <= zerolog.DebugLevel {
		// The transcript is logged at debug only; its logger costs an
		// allocation a session, so it is made only then.
		sess.log = s.cfg.Log.With().Str("channel", env.Get("agi_channel")).Logger()
	}
	if !s.track(conn, true) {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Str("script", env.Script()).Msg("fastagi handler panicked; session closed")
		}
	}()
	s.cfg.Handler.ServeAGI(s.ctx, sess)
}

// track records conn (and whether its handler runs); false once Close has
// begun, when a session that has not reached its handler must not start it.
func (s *Server) track(conn net.Conn, handling bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.conns[conn] = handling
	return true
}

// Close stops accepting, lets running sessions finish for DrainTimeout,
// then cancels and closes what is left. It is safe to call more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.done)
		// Sessions still waiting for their environment have done nothing
		// yet: end them now rather than after EnvTimeout.
		for c, handling := range s.conns {
			if !handling {
				_ = c.Close()
			}
		}
		s.mu.Unlock()
		if s.ln == nil {
			return
		}
		_ = s.ln.Close()
		finished := make(chan struct{})
		go func() { s.wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(s.cfg.DrainTimeout):
			s.stop()
			s.mu.Lock()
			for c := range s.conns {
				_ = c.Close()
			}
			s.mu.Unlock()
			<-finished
		}
		s.stop()
	})
	return nil
}
