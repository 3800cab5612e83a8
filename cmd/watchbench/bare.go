package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The baseline: a bare coder/websocket broadcast server, the least a Go
// program can do to send the same bytes to every connected client. Each
// connection has a writer goroutine fed by a queue (up to 1024 messages,
// presenced's queue per watcher, so that a slow client does not stall the
// broadcast) and coder/websocket's
// CloseRead reader for control frames. POST /broadcast sends its body to
// every connection, as does each message on the websocket GET /trigger;
// GET /count says how many there are; /metrics has the
// same Go and process collectors as presenced, for the memory figures.
func serveBare(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	var mu sync.Mutex
	conns := map[*queue]struct{}{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(context.Background())
		q := &queue{wake: make(chan struct{}, 1)}
		mu.Lock()
		conns[q] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(conns, q)
			mu.Unlock()
		}()
		for {
			select {
			case <-q.wake:
				for _, msg := range q.take() {
					if c.Write(ctx, websocket.MessageText, msg) != nil {
						return
					}
				}
			case <-ctx.Done():
				return
			}
		}
	})
	broadcast := func(msg []byte) {
		mu.Lock()
		for q := range conns {
			q.put(msg)
		}
		mu.Unlock()
	}
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		msg, _ := io.ReadAll(r.Body)
		broadcast(msg)
	})
	// GET /trigger: a websocket whose every message is broadcast, with no
	// answer, as ARI sends presenced its events: the sender is never held
	// back by the broadcast, so a rate is a rate.
	mux.HandleFunc("GET /trigger", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			broadcast(msg)
		}
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		_, _ = w.Write([]byte(strconv.Itoa(n)))
	})
	return http.Serve(ln, mux)
}

// queue is a connection's backlog: it grows as needed, up to 1024
// messages (presenced's queue per watcher), beyond which a message is
// dropped.
type queue struct {
	mu   sync.Mutex
	msgs [][]byte
	wake chan struct{}
}

func (q *queue) put(msg []byte) {
	q.mu.Lock()
	if len(q.msgs) < 1024 {
		q.msgs = append(q.msgs, msg)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}
