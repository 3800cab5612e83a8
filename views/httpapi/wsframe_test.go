package httpapi

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Frames written raw, beside coder/websocket's own messages, arrive whole
// and in order at a coder/websocket client, at every length encoding.
func TestRawFrames(t *testing.T) {
	payloads := [][]byte{[]byte(`{"a":1}`), bytes.Repeat([]byte("x"), 125), bytes.Repeat([]byte("y"), 126),
		bytes.Repeat([]byte("z"), 65535), bytes.Repeat([]byte("w"), 65536), bytes.Repeat([]byte("v"), 200000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw := &lockingWriter{ResponseWriter: w}
		c, err := websocket.Accept(lw, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		_ = c.Write(ctx, websocket.MessageText, []byte("through the library"))
		var frames net.Buffers
		for _, p := range payloads {
			frames = append(frames, textFrame(p))
		}
		_ = lw.conn.writeFrames(frames)
		_ = c.Write(ctx, websocket.MessageText, []byte("library again"))
		_, _, _ = c.Read(ctx) // until the client closes
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	want := append(append([][]byte{[]byte("through the library")}, payloads...), []byte("library again"))
	for i, w := range want {
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || !bytes.Equal(got, w) {
			t.Fatalf("message %d: %v %d bytes %v, want %d bytes", i, typ, len(got), err, len(w))
		}
	}
}
