package ami

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/staskobzar/goami2"

	"github.com/presenced/presenced/internal/clip"
)

// Banner is how Asterisk's manager greets a client.
const Banner = "Asterisk Call Manager/"

// event is an event frame with its position in the connection's stream.
type event struct {
	n   uint64
	msg *goami2.Message
}

type waiter struct {
	list   bool
	frames []*goami2.Message
	n      uint64 // stream position of the response
	done   chan struct{}
}

// conn is one logged-in AMI connection: a reader goroutine, actions
// matched to their responses by ActionID, and an unbounded event queue.
type conn struct {
	c   net.Conn
	br  *bufio.Reader
	log zerolog.Logger // frames at trace level

	wmu    sync.Mutex
	mu     sync.Mutex
	nextID uint64
	seen   uint64 // frames read so far
	wait   map[string]*waiter
	events []event
	notify chan struct{}
	err    error
	done   chan struct{}
	// booted: Asterisk said FullyBooted on this connection (it greets a
	// login with one once it has booted).
	booted bool
}

// dial connects and logs in. The banner and the login response are read
// frame by frame, however they arrive.
func dial(ctx context.Context, addr, user, secret string, timeout time.Duration, log zerolog.Logger) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to AMI at %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReaderSize(nc, 64<<10)
	banner, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, Banner) {
		nc.Close()
		if err == nil {
			err = fmt.Errorf("unexpected banner %q", clip.Clip(banner))
		}
		return nil, fmt.Errorf("AMI at %s: %w", addr, err)
	}
	login := goami2.NewAction("Login")
	login.AddField("ActionID", "login")
	login.AddField("Username", user)
	login.AddField("Secret", secret)
	log.Trace().Str("frame", "Action: Login\r\nActionID: login\r\nUsername: "+user+"\r\nSecret: [redacted]\r\n\r\n").Msg("ami sent")
	if _, err := nc.Write(login.Byte()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("AMI at %s: sending login: %w", addr, err)
	}
	for {
		frame, err := readFrame(br)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("AMI at %s: reading the login response: %w", addr, err)
		}
		log.Trace().Str("frame", frame).Msg("ami received")
		msg, err := parseFrame(frame)
		if err != nil || !msg.IsResponse() {
			continue // an event before the response
		}
		if !msg.IsSuccess() {
			nc.Close()
			return nil, fmt.Errorf("AMI at %s refused the login of %q: %s", addr, user, msg.Field("Message"))
		}
		break
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{c: nc, br: br, log: log, wait: map[string]*waiter{}, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *conn) read() {
	var err error
	for {
		var frame string
		if frame, err = readFrame(c.br); err != nil {
			break
		}
		c.log.Trace().Str("frame", frame).Msg("ami received")
		msg, perr := parseFrame(frame)
		if perr != nil {
			continue // one bad frame is not the end of the connection
		}
		c.mu.Lock()
		c.seen++
		if w, ok := c.wait[msg.Field("ActionID")]; ok && msg.Field("ActionID") != "" {
			w.frames = append(w.frames, msg)
			if len(w.frames) == 1 {
				w.n = c.seen
			}
			if !w.list || !msg.IsSuccess() && msg.IsResponse() || strings.EqualFold(msg.Field("EventList"), "Complete") {
				delete(c.wait, msg.Field("ActionID"))
				close(w.done)
			}
		} else if msg.IsEvent() {
			if strings.EqualFold(msg.Field("Event"), "FullyBooted") {
				c.booted = true
			}
			c.events = append(c.events, event{n: c.seen, msg: msg})
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.err = fmt.Errorf("AMI connection lost: %w", err)
	for id, w := range c.wait {
		delete(c.wait, id)
		close(w.done)
	}
	c.mu.Unlock()
	close(c.done)
}

// action sends msg and returns its response (and, for a list action, the
// events of the list up to its Complete event). n is the stream position
// of the response.
func (c *conn) action(ctx context.Context, msg *goami2.Message, list bool) ([]*goami2.Message, uint64, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, 0, c.err
	}
	c.nextID++
	id := "presenced-" + strconv.FormatUint(c.nextID, 10)
	w := &waiter{list: list, done: make(chan struct{})}
	c.wait[id] = w
	c.mu.Unlock()
	msg.SetField("ActionID", id)
	c.wmu.Lock()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	b := msg.Byte()
	c.log.Trace().Bytes("frame", b).Msg("ami sent")
	_, err := c.c.Write(b)
	c.wmu.Unlock()
	if err != nil {
		c.close()
		return nil, 0, fmt.Errorf("sending %s: %w", msg.Field("Action"), err)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.wait, id)
		c.mu.Unlock()
		return nil, 0, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(w.frames) == 0 || (list && len(w.frames) > 0 && w.frames[0].IsSuccess() && !strings.EqualFold(w.frames[len(w.frames)-1].Field("EventList"), "Complete")) {
		return nil, 0, c.err
	}
	if !w.frames[0].IsSuccess() {
		return w.frames, w.n, &ActionError{Action: msg.Field("Action"), Message: w.frames[0].Field("Message")}
	}
	return w.frames, w.n, nil
}

// ActionError is an AMI "Response: Error".
type ActionError struct{ Action, Message string }

func (e *ActionError) Error() string { return "AMI " + e.Action + ": " + e.Message }

// errWake is nextEvent's answer when wake fired first.
var errWake = errors.New("ami: woken")

// nextEvent waits for the next event, or for wake (which may be nil).
func (c *conn) nextEvent(ctx context.Context, wake <-chan time.Time) (event, error) {
	for {
		c.mu.Lock()
		if len(c.events) > 0 {
			ev := c.events[0]
			c.events[0] = event{}
			c.events = c.events[1:]
			c.mu.Unlock()
			return ev, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return event{}, err
		}
		select {
		case <-c.notify:
		case <-c.done:
		case <-wake:
			return event{}, errWake
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

func (c *conn) close() { _ = c.c.Close() }
