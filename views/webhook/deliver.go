package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
)

// readBatch bounds the journal entries a webhook reads at a time; its
// cursor is stored after each batch, so a crash repeats at most this many
// deliveries (they keep their ids).
const readBatch = 256

// worker delivers one webhook's events, one at a time, in order.
type worker struct {
	m     *Manager
	sub   subscription
	tmpl  template // GET action URLs
	match watch.Matcher

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// idle: in a cluster, a webhook another node delivers (this worker
	// does not run; it is what List and Get show).
	idle bool

	mu     sync.Mutex
	cursor uint64 // the last journal entry delivered or passed over
	saved  uint64 // the cursor as stored
	status Status
}

func newWorker(m *Manager, s subscription, tmpl template, cursor uint64) *worker {
	ctx, cancel := context.WithCancel(m.ctx)
	return &worker{m: m, sub: s, tmpl: tmpl, match: s.filter().Compile(), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), cursor: cursor, saved: cursor}
}

// stop ends the worker and waits for it.
func (w *worker) stop() {
	w.cancel()
	<-w.done
}

func (w *worker) info() Info {
	head := w.m.head()
	w.mu.Lock()
	st := w.status
	st.Cursor = w.cursor
	w.mu.Unlock()
	if head > max(st.Cursor, w.sub.StartSeq) {
		st.Backlog = head - max(st.Cursor, w.sub.StartSeq)
	}
	s := w.sub
	return Info{ID: s.ID, URL: redactedURL(s.URL), Method: s.Method, Description: s.Description, All: s.All,
		Hints: s.Hints, Providers: s.Providers, Created: s.Created, Status: st}
}

func (w *worker) run() {
	defer close(w.done)
	defer w.save(context.Background())
	for w.ctx.Err() == nil {
		wake := w.m.waitChan()
		w.mu.Lock()
		before := w.cursor
		w.mu.Unlock()
		evs, next, err := w.next()
		if err != nil {
			w.m.cfg.Log.Error().Err(err).Str("webhook", w.sub.ID).Msg("webhook: reading the journal")
			w.sleep(w.m.cfg.RetryMin)
			continue
		}
		for _, ev := range evs {
			if !w.deliver(ev) {
				return // stopping
			}
		}
		// deliver moved the cursor past each event; next is past the
		// entries this webhook does not select as well.
		w.mu.Lock()
		w.cursor = max(w.cursor, next)
		moved := w.cursor != before
		w.mu.Unlock()
		if moved {
			// Stored after every batch, not only at a graceful stop: a
			// crash repeats at most this batch.
			w.save(w.ctx)
			continue // more may be waiting: read on without waiting for a change
		}
		select {
		case <-wake:
		case <-w.ctx.Done():
		}
	}
}

// save stores the cursor if it moved.
func (w *worker) save(ctx context.Context) {
	w.mu.Lock()
	c, saved := w.cursor, w.saved
	w.mu.Unlock()
	if c == saved {
		return
	}
	if err := w.m.cfg.Store.SetWebhookCursors(ctx, map[string]uint64{w.sub.ID: c}); err != nil {
		if ctx.Err() == nil {
			w.m.cfg.Log.Error().Err(err).Str("webhook", w.sub.ID).Msg("webhook: storing the cursor")
		}
		return
	}
	w.mu.Lock()
	w.saved = c
	w.mu.Unlock()
}

func (w *worker) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.ctx.Done():
	}
}

// next returns the worker's next events and the cursor after them:
//   - a webhook that has not had its snapshot gets the latest state of what
//     it selects as of its start (marked snapshot);
//   - one whose cursor is below the journal's floor (it fell more than the
//     backlog behind) gets the latest state of what changed since its
//     cursor (marked coalesced), and continues from the head;
//   - otherwise the journal entries after its cursor that it selects.
func (w *worker) next() ([]Event, uint64, error) {
	for {
		w.mu.Lock()
		c := w.cursor
		w.mu.Unlock()
		m := w.m
		head := m.head()
		m.mu.Lock()
		floor := m.floor
		m.mu.Unlock()
		var hi uint64
		snapshot := false
		switch {
		case c < w.sub.StartSeq && floor <= w.sub.StartSeq:
			hi, snapshot = w.sub.StartSeq, true
		case c < floor:
			hi, snapshot = head, c < w.sub.StartSeq
		}
		if hi > 0 {
			// The latest state of each hint and provider, as of hi: the hub
			// holds it (what changed after hi is read from the log next).
			var evs []Event
			for _, e := range m.cfg.Hub.Current() {
				// A phone's call event is an event, not a state: never sent
				// as the latest state.
				if e.Seq <= c || e.Seq > hi || e.Encoded() == nil || e.Kind == calls.KindPhone || !w.match.Match(e.Kind, e.Key) {
					continue
				}
				ev, err := decodeValue(m.cfg.Hub.Kinds(), e.Seq, e.Key, e.Encoded())
				if err != nil {
					return nil, c, err
				}
				if snapshot && ev.Hint != nil && ev.Hint.Removed {
					continue
				}
				ev.Snapshot, ev.Coalesced = snapshot, !snapshot
				evs = append(evs, ev)
			}
			return evs, hi, nil
		}
		entries, err := m.cfg.Store.ReadLog(w.ctx, c, readBatch)
		if err != nil {
			return nil, c, err
		}
		if len(entries) == 0 {
			return nil, c, nil
		}
		if entries[0].Seq != c+1 {
			// Trimmed meanwhile: below the floor now. A cluster's stream
			// drops its oldest changes itself, so the floor is read again
			// from the store (the one known here follows this node's head,
			// which may trail the stream's).
			f, err := m.cfg.Store.LogFloor(w.ctx)
			if err != nil {
				return nil, c, err
			}
			m.mu.Lock()
			m.floor = max(m.floor, f)
			raised := m.floor > c
			m.mu.Unlock()
			if raised {
				continue
			}
			// A hole above the floor: nothing to get back; delivered
			// from what follows it.
		}
		var evs []Event
		for _, e := range entries {
			if !w.match.Match(watch.KindOf(e.Value), e.Key) {
				continue
			}
			ev, err := decodeValue(m.cfg.Hub.Kinds(), e.Seq, e.Key, e.Value)
			if err != nil {
				return nil, c, err
			}
			evs = append(evs, ev)
		}
		return evs, entries[len(entries)-1].Seq, nil
	}
}

// deliver sends one event until it is delivered or rejected; false when
// the worker is stopping. The cursor moves past the event either way.
func (w *worker) deliver(ev Event) bool {
	m := w.m
	for n := 0; ; n++ {
		if n > 0 {
			m.retries.Add(1)
		}
		res := w.attempt(w.ctx, ev)
		now := m.cfg.Now()
		w.mu.Lock()
		w.status.LastAttempt = now.UTC()
		switch res.outcome {
		case delivered:
			w.status.Delivered++
			w.status.LastError, w.status.FailingSince, w.status.NextAttempt = "", time.Time{}, time.Time{}
		case rejected:
			w.status.Rejected++
			w.status.LastError = res.err.Error()
			w.status.FailingSince, w.status.NextAttempt = time.Time{}, time.Time{}
		}
		if res.outcome != retry {
			if seq, err := strconv.ParseUint(ev.ID, 10, 64); err == nil && seq > w.cursor {
				w.cursor = seq
			}
			w.mu.Unlock()
			if res.outcome == delivered {
				m.delivered.Add(1)
			} else {
				m.rejected.Add(1)
				m.cfg.Log.Warn().Str("webhook", w.sub.ID).Str("target", logTarget(w.sub.URL)).Str("event", ev.ID).
					Err(res.err).Msg("webhook event rejected by the target; not retried")
			}
			return true
		}
		if w.ctx.Err() != nil {
			w.mu.Unlock()
			return false
		}
		m.failedAttempts.Add(1)
		wait := backoff(n, m.cfg.RetryMin, m.cfg.RetryMax, res.retryAfter)
		w.status.FailedAttempts++
		w.status.LastError = res.err.Error()
		if w.status.FailingSince.IsZero() {
			w.status.FailingSince = now.UTC()
		}
		w.status.NextAttempt = now.Add(wait).UTC()
		w.mu.Unlock()
		if n == 0 || n%10 == 0 {
			m.cfg.Log.Warn().Str("webhook", w.sub.ID).Str("target", logTarget(w.sub.URL)).Str("event", ev.ID).
				Int("attempt", n+1).Dur("retry_in", wait).Err(res.err).Msg("webhook delivery failed; will retry")
		}
		w.sleep(wait)
		if w.ctx.Err() != nil {
			return false
		}
	}
}

// backoff is the wait before attempt n+1: RetryMin doubled n times, at
// most RetryMax, with "equal jitter" (half fixed, half random), so that
// targets coming back are not hit by every webhook at once; a Retry-After
// the target sent is honoured up to RetryMax.
func backoff(n int, lo, hi, retryAfter time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, hi)
	}
	return d
}

type outcome uint8

const (
	delivered outcome = iota
	retry
	rejected
)

type attemptResult struct {
	outcome    outcome
	status     int
	retryAfter time.Duration
	err        error
}

// retried are the statuses worth another attempt besides 5xx: the target
// timed out, is not ready, or asks for less.
var retried = map[int]bool{http.StatusRequestTimeout: true, http.StatusTooEarly: true, http.StatusTooManyRequests: true}

// attempt makes one request.
func (w *worker) attempt(ctx context.Context, ev Event) attemptResult {
	m := w.m
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	ts := m.cfg.Now().Unix()
	var req *http.Request
	var err error
	if w.sub.Method == "GET" {
		u := w.tmpl.expand(ev)
		req, err = http.NewRequestWithContext(ctx, "GET", u, nil)
		if err == nil {
			req.Header.Set(SignatureHeader, Sign(w.sub.Secret, ts, []byte(u)))
			if w.sub.Bearer != "" {
				req.Header.Set("Authorization", "Bearer "+w.sub.Bearer)
			}
		}
	} else {
		body, _ := json.Marshal(ev)
		req, err = http.NewRequestWithContext(ctx, "POST", w.sub.URL, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(SignatureHeader, Sign(w.sub.Secret, ts, body))
		}
	}
	if err != nil {
		// The URL was checked at creation; an expansion that does not
		// parse is this event's problem, not the target's.
		return attemptResult{outcome: rejected, err: fmt.Errorf("building the request: %v", redactErr(err))}
	}
	req.Header.Set("User-Agent", m.cfg.UserAgent)
	req.Header.Set(EventIDHeader, ev.ID)
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return attemptResult{outcome: retry, err: fmt.Errorf("no answer within %v", m.cfg.Timeout)}
		}
		if targetRefused(err) {
			// The name resolves (now) to an address webhooks may not
			// reach: nothing was sent. Retried, as names change.
			var te *TargetError
			errors.As(err, &te)
			return attemptResult{outcome: retry, err: te}
		}
		return attemptResult{outcome: retry, err: errors.New(redactErr(err))}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	res := attemptResult{status: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		res.outcome = delivered
	case code >= 500 || retried[code]:
		res.outcome = retry
		res.err = fmt.Errorf("target answered %d", code)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			res.retryAfter = time.Duration(s) * time.Second
		}
	default:
		res.outcome = rejected
		res.err = fmt.Errorf("target answered %d", code)
	}
	return res
}
