package httpapi

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener caps the connections open at once. One over the cap is
// answered 503 and closed at once, rather than left waiting in the
// kernel's backlog: a client learns why, and presenced's descriptors (the
// FastAGI server shares them) are never used up by HTTP clients.
type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused func()
}

const busyAnswer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 88\r\n\r\n" +
	`{"error":{"code":"UNAVAILABLE","message":"too many connections; try again in a moment"}}`

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refused()
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte(busyAnswer))
				_ = c.Close()
			}()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
