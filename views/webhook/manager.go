package webhook

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/clip"
)

// Store keeps subscriptions and their cursors, and is where the hub's
// change log is read and trimmed (store.DB is one).
type Store interface {
	Webhooks(ctx context.Context) (configs map[string][]byte, cursors map[string]uint64, err error)
	PutWebhook(ctx context.Context, id string, config []byte) error
	DeleteWebhook(ctx context.Context, id string) error
	SetWebhookCursors(ctx context.Context, cursors map[string]uint64) error
	LogFloor(ctx context.Context) (uint64, error)
	ReadLog(ctx context.Context, after uint64, limit int) ([]change.Entry, error)
	TrimLog(ctx context.Context, upto uint64) error
}

// Config configures a Manager. Zero values take the defaults.
type Config struct {
	// Hub is the change log's writer (opened with the same Store as its
	// Log): webhooks deliver what it has written, with its numbers.
	Hub   *watch.Hub
	Store Store
	// Targets is where webhooks may go (target.go); nil is
	// DefaultTargetPolicy(). Resolve resolves a target's name at creation
	// (default: the system resolver).
	Targets *TargetPolicy
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Client makes the requests (default: every connection checked against
	// Targets, no proxy, redirects not followed). Tests only.
	Client *http.Client
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts (defaults
	// 1s and 5m): it doubles from RetryMin up to RetryMax, with jitter.
	RetryMin, RetryMax time.Duration
	// Retention is how many changes the log keeps (for webhooks, and for
	// watchers that resume): a target further behind is sent the latest
	// state of each hint and provider instead of every change (default
	// 100000).
	Retention uint64
	// MaxWebhooks bounds the number of webhooks (default 1000).
	MaxWebhooks int
	UserAgent   string
	Log         zerolog.Logger
	Now         func() time.Time
	// Shared, in a cluster, shares webhooks between the nodes (shared.go):
	// Store is then the cluster's too. Node names this node.
	Shared Shared
	Node   string
}

// Stats are the running totals, for metrics.
type Stats struct {
	Delivered      uint64 // events answered 2xx
	Rejected       uint64 // events given up after a status that is not retried
	FailedAttempts uint64 // attempts that failed and will be retried
	Retries        uint64 // attempts after a failed one
}

// Manager delivers every change of the hub's log to each webhook, in
// order, with retries, and trims the log to its retention.
type Manager struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// jmu serialises trims and webhook creation, so that a new webhook's
	// start and the log agree.
	jmu sync.Mutex

	mu      sync.Mutex
	floor   uint64 // every entry up to it is trimmed
	workers map[string]*worker
	// In a cluster: by webhook, the end of this node's competing for
	// delivering it.
	campaigns map[string]context.CancelFunc

	delivered, rejected, failedAttempts, retries atomic.Uint64
}

// New returns a manager; Open starts it.
func New(cfg Config) *Manager {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(5*time.Minute, cfg.RetryMin)
	}
	if cfg.Retention == 0 {
		cfg.Retention = 100000
	}
	if cfg.MaxWebhooks <= 0 {
		cfg.MaxWebhooks = 1000
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "presenced"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Targets == nil {
		p := DefaultTargetPolicy()
		cfg.Targets = &p
	}
	if cfg.Client == nil {
		cfg.Client = cfg.Targets.client()
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	mctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, ctx: mctx, cancel: cancel, workers: map[string]*worker{}}
}

// Open loads the webhooks and where the log was trimmed, and starts
// delivering and trimming.
func (m *Manager) Open(ctx context.Context) error {
	cfg := m.cfg
	floor, err := cfg.Store.LogFloor(ctx)
	if err != nil {
		return err
	}
	m.floor = floor
	if cfg.Shared != nil {
		m.openShared()
		return nil
	}
	configs, cursors, err := cfg.Store.Webhooks(ctx)
	if err != nil {
		return err
	}
	for id, raw := range configs {
		s, tmpl, err := m.readStored(id, raw)
		if err != nil {
			// Written by an older presenced, or refused by today's
			// PRESENCED_WEBHOOK_ALLOW: kept in the store, not delivered.
			m.cfg.Log.Error().Err(err).Str("webhook", clip.Clip(id)).Msg("webhook: a stored definition presenced's API would refuse; not delivered")
			continue
		}
		m.workers[id] = newWorker(m, s, tmpl, cursors[id])
	}
	// Trimmed before the workers read: one further behind than the
	// retention gets the latest state (coalesced), as it would have had
	// the log been trimmed before the restart.
	m.trim(ctx)
	for _, w := range m.workers {
		m.start(w)
	}
	m.wg.Add(1)
	go m.trimLoop()
	return nil
}

// readStored reads a stored webhook definition (the store's, or the
// cluster's, which anything that reached NATS could have written) and
// checks it exactly as Create checks a new one: its fields, its secret
// and its target's address (a name is checked at each connection).
func (m *Manager) readStored(id string, raw []byte) (subscription, template, error) {
	var s subscription
	if err := json.Unmarshal(raw, &s); err != nil {
		return subscription{}, nil, fmt.Errorf("does not read: %w", err)
	}
	if s.ID != id || !validID(id) {
		return subscription{}, nil, fmt.Errorf("its id %q is not one presenced gives", clip.Clip(s.ID))
	}
	if s.Secret == "" {
		return subscription{}, nil, errors.New("it has no secret")
	}
	checked, tmpl, err := validate(Spec{URL: s.URL, Method: s.Method, Secret: s.Secret, Description: s.Description,
		All: s.All, Hints: s.Hints, Providers: s.Providers, Bearer: s.Bearer})
	if err != nil {
		return subscription{}, nil, err
	}
	if checked.Method != s.Method {
		return subscription{}, nil, fmt.Errorf("method %q is not POST or GET", clip.Clip(s.Method))
	}
	if err := m.cfg.Targets.checkHost(m.ctx, nil, s.URL); err != nil {
		return subscription{}, nil, err
	}
	return s, tmpl, nil
}

// validID: "wh_" and 16 hex digits, as validate makes them.
func validID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, "wh_")
	if !ok || len(hexPart) != 16 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

// head returns the last change in the log.
func (m *Manager) head() uint64 {
	h, _ := m.cfg.Hub.Durable()
	return h
}

// trimLoop trims the log as it grows, to its retention.
func (m *Manager) trimLoop() {
	defer m.wg.Done()
	for {
		_, grown := m.cfg.Hub.Durable()
		m.trim(m.ctx)
		select {
		case <-grown:
		case <-m.ctx.Done():
			return
		}
		// At most a trim a second; the retention is a lower bound.
		select {
		case <-time.After(time.Second):
		case <-m.ctx.Done():
			return
		}
	}
}

// trim removes the log entries beyond the retention (webhooks further
// behind get the latest state instead).
func (m *Manager) trim(ctx context.Context) {
	m.jmu.Lock()
	defer m.jmu.Unlock()
	head := m.head()
	if head <= m.cfg.Retention {
		return
	}
	upto := head - m.cfg.Retention
	m.mu.Lock()
	floor := m.floor
	m.mu.Unlock()
	if upto <= floor {
		return
	}
	if err := m.cfg.Store.TrimLog(ctx, upto); err != nil {
		if ctx.Err() == nil {
			m.cfg.Log.Error().Err(err).Msg("change log: cannot trim")
		}
		return
	}
	m.mu.Lock()
	m.floor = max(m.floor, upto)
	m.mu.Unlock()
}

// Close stops delivering and trimming, and stores every cursor.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

func (m *Manager) start(w *worker) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run()
	}()
}

// The manager as the HTTP API manages it (httpapi.Webhooks): what it
// returns is shown as JSON.

// CreateWebhook creates a webhook from a definition (Spec) read with
// decode, and returns it with its secret, shown this once.
func (m *Manager) CreateWebhook(ctx context.Context, decode func(v any) error) (any, error) {
	var spec Spec
	if err := decode(&spec); err != nil {
		return nil, err
	}
	info, secret, err := m.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return struct {
		Info
		Secret string `json:"secret"`
	}{info, secret}, nil
}

// ListWebhooks is List.
func (m *Manager) ListWebhooks() any { return m.List() }

// GetWebhook is Get.
func (m *Manager) GetWebhook(id string) (any, bool) { return m.Get(id) }

// DeleteWebhook is Delete.
func (m *Manager) DeleteWebhook(ctx context.Context, id string) error { return m.Delete(ctx, id) }

// TestWebhook is Test.
func (m *Manager) TestWebhook(ctx context.Context, id string) (any, error) { return m.Test(ctx, id) }

// Create adds a webhook. It returns its id and its secret, which the API
// shows this once.
func (m *Manager) Create(ctx context.Context, spec Spec) (Info, string, error) {
	s, tmpl, err := validate(spec)
	if err != nil {
		return Info{}, "", err
	}
	if err := m.cfg.Targets.checkHost(ctx, m.cfg.Resolve, s.URL); err != nil {
		return Info{}, "", err
	}
	s.Created = m.cfg.Now().UTC()
	m.jmu.Lock()
	defer m.jmu.Unlock()
	m.mu.Lock()
	n := len(m.workers)
	m.mu.Unlock()
	s.StartSeq = m.head()
	if n >= m.cfg.MaxWebhooks {
		return Info{}, "", presence.Errorf(presence.CodeInvalidArgument, "there are already %d webhooks, the most presenced keeps", n)
	}
	raw, _ := json.Marshal(s)
	if err := m.cfg.Store.PutWebhook(ctx, s.ID, raw); err != nil {
		code := presence.CodeInternal
		if m.cfg.Shared != nil {
			code = presence.CodeUnavailable
		}
		return Info{}, "", presence.WrapError(code, err, "storing the webhook")
	}
	if m.cfg.Shared != nil {
		// Every node (this one too) learns it from the cluster; known here
		// at once, so that it is listed as soon as it is created.
		m.sharedChanged(s.ID, raw)
		m.cfg.Log.Info().Str("webhook", s.ID).Str("target", logTarget(s.URL)).Str("method", s.Method).Msg("webhook created")
		m.mu.Lock()
		w := m.workers[s.ID]
		m.mu.Unlock()
		return w.info(), s.Secret, nil
	}
	w := newWorker(m, s, tmpl, 0)
	m.mu.Lock()
	m.workers[s.ID] = w
	m.mu.Unlock()
	m.start(w)
	m.cfg.Log.Info().Str("webhook", s.ID).Str("target", logTarget(s.URL)).Str("method", s.Method).Msg("webhook created")
	return w.info(), s.Secret, nil
}

// List returns every webhook, oldest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	ws := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(ws))
	for _, w := range ws {
		out = append(out, m.sharedInfo(m.ctx, w.info()))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Get returns one webhook.
func (m *Manager) Get(id string) (Info, bool) {
	m.mu.Lock()
	w, ok := m.workers[id]
	m.mu.Unlock()
	if !ok {
		return Info{}, false
	}
	return m.sharedInfo(m.ctx, w.info()), true
}

func notFound(id string) error {
	return presence.Errorf(presence.CodeNotFound, "no webhook %q", clip.Clip(id))
}

// Delete stops a webhook's deliveries and forgets it.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	w, ok := m.workers[id]
	m.mu.Unlock()
	if !ok {
		return notFound(id)
	}
	if m.cfg.Shared != nil {
		if err := m.cfg.Store.DeleteWebhook(ctx, id); err != nil {
			return presence.WrapError(presence.CodeUnavailable, err, "deleting the webhook")
		}
		m.sharedChanged(id, nil) // every node stops it as it learns it
		m.cfg.Log.Info().Str("webhook", id).Msg("webhook deleted")
		return nil
	}
	w.stop()
	m.jmu.Lock()
	defer m.jmu.Unlock()
	if err := m.cfg.Store.DeleteWebhook(ctx, id); err != nil {
		return presence.WrapError(presence.CodeInternal, err, "deleting the webhook")
	}
	m.mu.Lock()
	delete(m.workers, id)
	m.mu.Unlock()
	m.cfg.Log.Info().Str("webhook", id).Msg("webhook deleted")
	return nil
}

// TestResult is what one test delivery got.
type TestResult struct {
	Delivered bool   `json:"delivered"`
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Test sends a webhook one event of type "test", now, outside its order
// (its journal and cursor are not touched), and says how it went.
func (m *Manager) Test(ctx context.Context, id string) (TestResult, error) {
	m.mu.Lock()
	w, ok := m.workers[id]
	m.mu.Unlock()
	if !ok {
		return TestResult{}, notFound(id)
	}
	var rnd [6]byte
	_, _ = crand.Read(rnd[:])
	ev := Event{ID: fmt.Sprintf("test-%x", rnd), Type: TypeTest, Time: m.cfg.Now().UTC()}
	res := w.attempt(ctx, ev)
	out := TestResult{Delivered: res.outcome == delivered, Status: res.status}
	var te *TargetError
	switch {
	case res.err == nil:
	case errors.As(res.err, &te), res.status != 0:
		out.Error = res.err.Error()
	default:
		// A closed port, a filtered one and a service that is not HTTP
		// all read the same: a test is not a port scanner. The cause is
		// in presenced's log.
		m.cfg.Log.Info().Err(res.err).Str("webhook", id).Msg("webhook test: no HTTP answer")
		out.Error = "the target gave no HTTP answer"
	}
	return out, nil
}

// Stats returns the running totals.
func (m *Manager) Stats() Stats {
	return Stats{Delivered: m.delivered.Load(), Rejected: m.rejected.Load(),
		FailedAttempts: m.failedAttempts.Load(), Retries: m.retries.Load()}
}

// Backlog returns the journal entries waiting, over all webhooks.
// In a cluster, over the webhooks this node delivers (each node reports
// its own).
func (m *Manager) Backlog() uint64 {
	m.mu.Lock()
	ws := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		if !w.idle {
			ws = append(ws, w)
		}
	}
	m.mu.Unlock()
	var n uint64
	for _, w := range ws {
		n += w.info().Status.Backlog
	}
	return n
}

// Delivering returns the ids of the webhooks this node delivers (all,
// alone; in a cluster, those whose lease it holds), sorted.
func (m *Manager) Delivering() []string {
	m.mu.Lock()
	out := make([]string, 0, len(m.workers))
	for id, w := range m.workers {
		if !w.idle {
			out = append(out, id)
		}
	}
	m.mu.Unlock()
	sort.Strings(out)
	return out
}

// Len returns the number of webhooks.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}

// waitChan returns a channel closed when the log next grows.
func (m *Manager) waitChan() <-chan struct{} {
	_, ch := m.cfg.Hub.Durable()
	return ch
}
