package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// A lean WebSocket client: the handshake, masked frames out, whole frames
// in, pongs for pings. coder/websocket's client allocates and locks per
// message, and with thousands of watchers in this one process it, not the
// server, would set the pace of the sustained figures; this one reads
// frames straight out of a large buffer. (The servers use the real
// library.)

type leanWS struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialLeanWS(ctx context.Context, rawURL string) (*leanWS, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(k[:]))
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &leanWS{conn: conn, br: br}, nil
}

// write sends one masked frame.
func (w *leanWS) write(opcode byte, payload []byte) error {
	n := len(payload)
	f := []byte{0x80 | opcode}
	switch {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = binary.BigEndian.AppendUint16(append(f, 0x80|126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 0x80|127), uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	_, err := w.conn.Write(f)
	return err
}

// next returns the next data message's payload (valid until the next
// call), answering pings on the way.
func (w *leanWS) next() ([]byte, error) {
	var buf []byte
	for {
		h, err := w.br.Peek(2)
		if err != nil {
			return nil, err
		}
		opcode, n := h[0]&0x0f, int(h[1]&0x7f)
		hl := 2
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		h, err = w.br.Peek(hl)
		if err != nil {
			return nil, err
		}
		switch n {
		case 126:
			n = int(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			n = int(binary.BigEndian.Uint64(h[2:10]))
		}
		if h[1]&0x80 != 0 {
			return nil, errors.New("masked frame from the server")
		}
		_, _ = w.br.Discard(hl)
		if n <= w.br.Size() {
			p, err := w.br.Peek(n)
			if err != nil {
				return nil, err
			}
			_, _ = w.br.Discard(n)
			buf = p
		} else {
			buf = make([]byte, n)
			if _, err := io.ReadFull(w.br, buf); err != nil {
				return nil, err
			}
		}
		switch opcode {
		case 0x9: // ping
			if err := w.write(0xA, append([]byte(nil), buf...)); err != nil {
				return nil, err
			}
		case 0x8:
			return nil, io.EOF
		case 0xA:
		default:
			return buf, nil
		}
	}
}
