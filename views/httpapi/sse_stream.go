package httpapi

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/watch"
)

// sseConn is one Server-Sent Events watcher on its hijacked connection.
// The body is delimited by the connection's end (Connection: close), so
// events are written as they are, unchunked. Nothing reads the
// connection: a client that went away is noticed at the next write, a
// keepalive at the latest.
type sseConn struct {
	s    *Server
	conn net.Conn
	sub  *watch.Sub

	mu     sync.Mutex // one write at a time
	closed bool

	once     sync.Once
	keep     *pinger
	stopDrop func()
	stopBase func() bool
	untrack  func() // under mu
}

// serveSSE writes head (the response head and the snapshot) and starts
// the stream; it returns at once.
func (s *Server) serveSSE(r *http.Request, conn net.Conn, sub *watch.Sub, epoch string, head []byte, hide bool) {
	st := &sseConn{s: s, conn: conn, sub: sub, keep: &pinger{}}
	s.sseStreams.Add(1)
	// Whatever ends the stream (the server closing, a hub drop, a failed
	// write) closes it once.
	st.stopBase = context.AfterFunc(s.base, st.close)
	st.stopDrop = s.onDrop(sub, "sse", st.close)
	if !st.write(head) {
		st.close()
		return
	}
	frame, slot := sseFrame(epoch, hide), memoSlot(memoSSE, hide)
	fw := &forwarder{sub: sub, ctx: s.base,
		deliver: func(evs []*watch.Event) bool {
			frames := make(net.Buffers, len(evs))
			for i, ev := range evs {
				frames[i] = ev.Memo(slot, frame)
			}
			if !st.write(frames...) {
				st.close()
				return false
			}
			return true
		},
		dropped: func(err error) {
			var b bytes.Buffer
			writeSSE(&b, "", 0, "error", map[string]string{"code": "DROPPED", "message": err.Error()})
			st.write(b.Bytes())
			st.close()
		}}
	st.keep.start(sseKeepalive, func() bool {
		if !st.write([]byte(": keepalive\n\n")) {
			st.close()
			return false
		}
		return true
	})
	fw.start()
	// Known by its token from now on (a reload that removes the token
	// closes it); a stream closed meanwhile is forgotten at once.
	untrack := s.track(r, st.close)
	st.mu.Lock()
	closed := st.closed
	if !closed {
		st.untrack = untrack
	}
	st.mu.Unlock()
	if closed {
		untrack()
	}
}

// write writes whole, under a deadline: a client that stops reading does
// not hold the stream for ever. False when the stream is over.
func (st *sseConn) write(bufs ...[]byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	_ = st.conn.SetWriteDeadline(time.Now().Add(st.s.writeTimeout()))
	b := net.Buffers(bufs)
	_, err := b.WriteTo(st.conn)
	return err == nil
}

// close ends the stream; it may be called from anywhere, any number of
// times. Closing the connection first lets a write blocked on a client
// that stopped reading return.
func (st *sseConn) close() {
	st.once.Do(func() {
		_ = st.conn.Close()
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
		st.sub.Close()
		st.keep.stop()
		st.stopDrop()
		st.stopBase()
		st.mu.Lock()
		untrack := st.untrack
		st.mu.Unlock()
		if untrack != nil {
			untrack()
		}
		st.s.sseStreams.Add(-1)
	})
}
