package httpapi

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
)

// Events are written to WebSocket watchers as whole frames built once per
// event, not through coder/websocket's writer. coder/websocket frames
// and flushes every message on its own: at a thousand watchers and a
// thousand changes a second that is a million frame encodings and a
// million write(2) calls a second, and the server falls behind
// (BENCHMARKS.md). A change's frame is the same bytes for every watcher
// (a server's frames are not masked; compression is not negotiated), so
// it is built once (watch.Event.Memo) and a batch of them goes out in one
// writev.
//
// This is safe beside coder/websocket's own writes because every write to
// the connection passes through lockedConn's mutex, whole: coder/websocket
// flushes each frame it writes (control frames are small, so in one
// Write), and presenced's own messages through coder/websocket (snapshot,
// replies) are serialised with event batches by wsConn.wmu.

// lockedConn is the hijacked connection coder/websocket writes to.
type lockedConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *lockedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

// writeFrames writes whole frames in one system call. A client that
// stopped reading blocks it until the connection is closed (by a ping's
// timeout or the hub's drop).
func (c *lockedConn) writeFrames(frames net.Buffers) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := frames.WriteTo(c.Conn)
	return err
}

// textFrame is a final, unmasked text frame carrying payload (RFC 6455
// section 5.2).
func textFrame(payload []byte) []byte {
	n := len(payload)
	var f []byte
	switch {
	case n < 126:
		f = append(make([]byte, 0, 2+n), 0x81, byte(n))
	case n <= 0xffff:
		f = append(make([]byte, 0, 4+n), 0x81, 126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(make([]byte, 0, 10+n), 0x81, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}

// lockingWriter hands coder/websocket's Accept a hijacked connection
// whose writes are serialised with event batches.
type lockingWriter struct {
	http.ResponseWriter
	conn *lockedConn
}

func (w *lockingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The 101 answer was flushed by Hijack; what coder/websocket writes
	// from now on goes through the locked connection.
	w.conn = &lockedConn{Conn: nc}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 1024)), nil
}
