package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// tracker knows, for every change, how many watchers still miss it and
// when the last one got it. Each watcher counts the changes it received:
// its i-th change message is change i (streams keep order; a coalesced
// stream would miscount, which is why the hub's coalesced total is
// reported next to every figure).
type tracker struct {
	left []atomic.Int64
	at   []atomic.Int64 // unix nanoseconds when left reached 0
	done chan int       // each change, as its last watcher gets it
}

func newTracker(changes, watchers int) *tracker {
	t := &tracker{left: make([]atomic.Int64, changes), at: make([]atomic.Int64, changes), done: make(chan int, changes)}
	for i := range t.left {
		t.left[i].Store(int64(watchers))
	}
	return t
}

func (t *tracker) got(k int) {
	if k < len(t.left) && t.left[k].Add(-1) == 0 {
		t.at[k].Store(time.Now().UnixNano())
		t.done <- k
	}
}

// pool is a set of watchers of one kind.
type pool struct {
	kind    string // ws, sse (presenced) or bare (the baseline)
	base    string // http://host:port
	tr      atomic.Pointer[tracker]
	sample  atomic.Pointer[[]byte] // a change message as presenced sent it
	mu      sync.Mutex
	closers []func()
}

// connect opens n watchers, 100 at a time, each waiting for its snapshot
// (presenced) before the next is counted.
func (p *pool) connect(ctx context.Context, n int) error {
	sem := make(chan struct{}, 100)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.one(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// open connects n watchers and waits until the server counts them all
// (the bare server has no snapshot to wait for); on failure it closes
// what it opened.
func (p *pool) open(ctx context.Context, n int) error {
	if err := p.connect(ctx, n); err != nil {
		p.close()
		return err
	}
	if p.kind == "bare" {
		waitCount(ctx, p.base, n)
	}
	return nil
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.closers {
		c()
	}
	p.closers = nil
}

func (p *pool) add(c func()) {
	p.mu.Lock()
	p.closers = append(p.closers, c)
	p.mu.Unlock()
}

var sseClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true}}

func (p *pool) one(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch p.kind {
	case "ws", "bare":
		path := "/v1/ws"
		if p.kind == "bare" {
			path = "/ws"
		}
		c, err := dialLeanWS(dctx, "ws"+p.base[len("http"):]+path)
		if err != nil {
			return fmt.Errorf("dialing %s: %w", path, err)
		}
		p.add(func() { c.conn.Close() })
		if p.kind == "ws" {
			if err := c.write(0x1, []byte(`{"type":"subscribe","all":true}`)); err != nil {
				return err
			}
			if _, err := c.next(); err != nil { // the snapshot
				return fmt.Errorf("reading the snapshot: %w", err)
			}
		}
		go func() {
			k := 0
			for {
				msg, err := c.next()
				if err != nil {
					return
				}
				if p.kind == "ws" && !bytes.HasPrefix(msg, []byte(`{"type":"hint"`)) {
					continue
				}
				if k == 0 && p.kind == "ws" {
					sample := append([]byte(nil), msg...)
					p.sample.CompareAndSwap(nil, &sample)
				}
				p.tr.Load().got(k)
				k++
			}
		}()
	case "sse":
		req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/v1/events?all=1", nil)
		resp, err := sseClient.Do(req)
		if err != nil {
			return fmt.Errorf("opening the event stream: %w", err)
		}
		p.add(func() { resp.Body.Close() })
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		for { // up to the end of the snapshot event
			line, err := br.ReadSlice('\n')
			if err != nil {
				return fmt.Errorf("reading the snapshot: %w", err)
			}
			if len(line) == 1 {
				break
			}
		}
		go func() {
			k := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if string(line) == "event: hint\n" {
					p.tr.Load().got(k)
					k++
				}
			}
		}()
	}
	return nil
}
