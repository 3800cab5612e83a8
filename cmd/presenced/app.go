package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ami"
	"github.com/presenced/presenced/asterisk/ari"
	"github.com/presenced/presenced/asterisk/fastagi"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/dialplan"
	"github.com/presenced/presenced/core/forward"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/core/voicemail"
	"github.com/presenced/presenced/storage/cluster"
	"github.com/presenced/presenced/storage/mirror"
	"github.com/presenced/presenced/storage/store"
	"github.com/presenced/presenced/views/dpma"
	"github.com/presenced/presenced/views/filter"
	"github.com/presenced/presenced/views/hooksrv"
	"github.com/presenced/presenced/views/httpapi"
	"github.com/presenced/presenced/views/webhook"
)

// The store keeps the webhooks too; the assertion is here because store
// and webhook are siblings that do not import each other.
var _ webhook.Store = (*store.DB)(nil)

// Main is presenced, wired: the only place that knows every part. Open
// starts the parts in order; Close stops them in reverse.
type Main struct {
	Config Config
	Log    zerolog.Logger
	// Reload, when set, asks Run to read PRESENCED_DIALPLAN again (SIGHUP).
	Reload <-chan os.Signal

	db        *store.DB
	cluster   *cluster.Cluster // in a cluster (cluster.go)
	synced    *watch.Gate      // the feeds have read Asterisk once
	ariClient *ari.Client      // with ARI
	calls     *calls.Book      // the calls on every channel (with AMI)
	dialer    *calls.Dialer
	fwd       *forward.Service
	dpma      *dpma.Bridge // Digium phone apps (PRESENCED_DPMA)
	hints     *hints.Table
	hub       *watch.Hub
	ami       *ami.Feed
	ari       *ari.Feed
	http      *httpapi.Server
	hooksOut  *webhook.Manager
	mirror    *mirror.Mirror // a site's cross-site BLF devices (cluster of sites, with ARI)
	roster    atomic.Pointer[map[string]string]
	mx        *metrics
	ctx       context.Context // of the feeds; cancelled by Close
	stop      context.CancelFunc
	feeds     sync.WaitGroup
	svc       *presence.Service
	hooks     *hooksrv.Server // the dialplan hooks on FastAGI and Stasis
	reg       *prometheus.Registry
	agi       *fastagi.Server
}

// errStart marks an error of Open inside Run (already logged).
var errStart = errors.New("presenced could not start")

// Run opens presenced, runs it until ctx ends (reading the dialplan again
// on each Reload), then closes it.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		m.Log.Error().Err(err).Msg("presenced could not start")
		_ = m.Close()
		return fmt.Errorf("%w: %w", errStart, err)
	}
	m.Log.Info().Str("version", buildVersion()).Msg("presenced started")
	for {
		select {
		case <-m.Reload:
			m.reloadTokens()
			if err := m.ReloadHints(); err != nil {
				m.Log.Error().Err(err).Msg("dialplan not reloaded; the hints stay as they were")
			}
		case <-ctx.Done():
			m.Log.Info().Msg("presenced stopping")
			return m.Close()
		}
	}
}

// NewMain returns an unopened Main.
func NewMain(cfg Config, log zerolog.Logger) *Main { return &Main{Config: cfg, Log: log} }

// Open opens the store, arms stored timers and starts the FastAGI server.
// Errors (a locked store, a port in use) are returned here, at start.
func (m *Main) Open(ctx context.Context) error {
	for _, open := range []func(context.Context) error{m.openLog, m.openAsterisk, m.openCore, m.openAGI, m.openHTTP} {
		if err := open(ctx); err != nil {
			return err
		}
	}
	m.startFeeds()
	return nil
}

// openLog opens the store (or joins the cluster), the change log and the
// hint table that feeds it.
func (m *Main) openLog(ctx context.Context) error {
	m.hints = hints.NewTable()
	if err := m.loadRoster(); err != nil {
		return &ConfigError{Var: "ROSTER", Err: err}
	}
	db, err := store.Open(m.Config.DataDir)
	if err != nil {
		return fmt.Errorf("opening the store in PRESENCED_DATA_DIR %s: %w", m.Config.DataDir, err)
	}
	m.db = db
	m.reg = prometheus.NewRegistry()
	feeds := 0
	if m.Config.hasAMI() {
		feeds++
	}
	if m.Config.hasARI() {
		feeds++
	}
	m.synced = watch.NewGate(feeds)
	hubCfg := watch.Config{Log: db, Kinds: filter.Kinds(), Ready: m.synced.Ready(), CloseTimeout: m.Config.ShutdownTimeout, OnLogError: func(err error) {
		m.Log.Error().Err(err).Str("component", "watch").Msg("change log: cannot append; retrying")
	}}
	if m.Config.Clustered() {
		if err := m.openCluster(ctx); err != nil {
			return err
		}
		// The change log is the cluster's stream.
		hubCfg.Log, hubCfg.Stream, hubCfg.Node, hubCfg.Site = nil, m.cluster.Log, m.Config.Node, m.Config.Site
	}
	m.hub = watch.New(hubCfg)
	if err := m.hub.Open(ctx); err != nil {
		return err
	}
	m.hints.Sink, m.hints.Site = m.hub, hubCfg.Site
	if m.Config.Dialplan != "" {
		if err := m.loadHints(); err != nil {
			return &ConfigError{Var: "DIALPLAN", Err: err}
		}
	}
	return nil
}

// openAsterisk makes the connections to Asterisk that are configured
// (started by startFeeds): AMI, with the calls and mailboxes read from it
// and click to dial through it, and ARI's client.
func (m *Main) openAsterisk(context.Context) error {
	if m.Config.hasARI() {
		m.ariClient = &ari.Client{URL: m.Config.ARIURL, User: m.Config.ARIUser, Password: m.Config.ARIPassword,
			Log: m.Log.With().Str("component", "ari").Logger()}
	}
	if !m.Config.hasAMI() {
		return nil
	}
	m.calls = calls.NewBook(m.hub, m.Config.Site)
	m.ami = &ami.Feed{Addr: m.Config.AMIAddr, User: m.Config.AMIUser, Secret: m.Config.AMISecret,
		Log: m.Log.With().Str("component", "ami").Logger(), Hints: m.hints, Calls: m.calls,
		Mailboxes: voicemail.NewBoxes(m.hub, m.Config.Site, m.hub.Latest(voicemail.Kind)), OnUp: m.synced.Up(m.flushPending)}
	m.dialer = calls.NewDialer(m.Config.dial, ami.Writer{Feed: m.ami}, m.Config.DialContext, m.Log.With().Str("component", "audit").Logger())
	return nil
}

// openCore opens the domain: presence, forwards, webhooks, the hooks, and
// what follows ARI (the DND devices, cross-site BLF).
func (m *Main) openCore(ctx context.Context) error {
	pcfg := presence.Config{Store: m.db, Observed: m.ami != nil, Site: m.Config.Site, MaxHistory: m.Config.PresenceHistory,
		Listener: m.hints, ChangeLog: m.hub, Budget: m.Config.WriteBudget, Log: m.Log.With().Str("component", "presence").Logger()}
	var fstore forward.Store = m.db
	targets := m.Config.targets
	whCfg := webhook.Config{Hub: m.hub, Store: m.db, Timeout: m.Config.WebhookTimeout, Targets: &targets,
		RetryMax: m.Config.WebhookRetryMax, Retention: m.Config.LogRetention, UserAgent: "presenced/" + buildVersion(),
		Log: m.Log.With().Str("component", "webhook").Logger()}
	if c := m.cluster; c != nil {
		// Records, forwards, webhooks, their cursors and who delivers each
		// are the cluster's.
		pcfg.Store, pcfg.Shared, fstore = c.Records, c.Records, c.Forwards
		whCfg.Store, whCfg.Shared, whCfg.Node = c.Webhooks, c.Webhooks, m.Config.Node
	}
	if m.ami != nil {
		// Writes without a channel go over AMI, which, unlike ARI,
		// reports a rejected value.
		pcfg.Background = ami.Writer{Feed: m.ami}
	}
	if m.ariClient != nil {
		pcfg.DND = ari.DND{Client: m.ariClient}
	}
	var err error
	if m.svc, err = presence.NewService(pcfg); err != nil {
		return err
	}
	if m.ami != nil {
		m.ami.Presence = m.svc
		if m.Config.DPMA == "on" {
			m.dpma = dpma.New(dpma.Config{Presence: m.svc.Client(), Hints: m.hints, Hub: m.hub, Transport: ami.Writer{Feed: m.ami},
				Log: m.Log.With().Str("component", "dpma").Logger()})
			m.ami.DPMA = m.dpma
		}
	}
	// Open announces every stored presence: the views start from it until
	// a feed knows better.
	if err := m.svc.Open(ctx); err != nil {
		return err
	}
	m.fwd = forward.NewService(forward.Config{Store: fstore, Policy: m.Config.dial, Log: m.Log.With().Str("component", "audit").Logger(), Sink: m.hub, ChangeLog: m.hub, Budget: m.Config.WriteBudget})
	if err := m.fwd.Open(ctx); err != nil {
		return err
	}
	m.hooksOut = webhook.New(whCfg)
	if err := m.hooksOut.Open(ctx); err != nil {
		return err
	}
	m.hooks = hooksrv.New(&dialplan.Hooks{Presence: m.svc, Hints: m.hints, Forwards: m.fwd},
		m.Log.With().Str("component", "hook").Logger(), m.reg)
	m.openARIFeed()
	return nil
}

// openARIFeed makes the ARI feed (device states, Stasis hooks) and, in a
// cluster of sites, the mirror of the other sites' hints.
func (m *Main) openARIFeed() {
	if m.ariClient == nil {
		return
	}
	if m.Config.Site != "" {
		// Cross-site BLF: this site's Stasis:presenced-remote-<site>-<exten>
		// devices follow the other sites' hints.
		m.mirror = mirror.New(mirror.Config{Hub: m.hub, Site: m.Config.Site, Context: m.Config.RemoteContext,
			Uses: m.hints.UsesDevice, Changed: m.hints.DevicesChanged, Devices: m.ariClient, Cut: m.cutOff,
			Log: m.Log.With().Str("component", "mirror").Logger()})
	}
	m.ari = &ari.Feed{Client: m.ariClient, App: m.Config.ARIApp, Devices: m.hints,
		OnUp: m.synced.Up(func() {
			m.svc.ReconcileDND(m.hints.DNDUsers(), true)
			if m.mirror != nil {
				m.mirror.Resync()
			}
		}),
		OnFollow: func() { m.svc.ReconcileDND(m.hints.DNDUsers(), false) },
		OnStasis: m.hooks.ServeStasis, Log: m.Log.With().Str("component", "ari").Logger()}
}

// openAGI starts the FastAGI server.
func (m *Main) openAGI(ctx context.Context) error {
	alog := m.Log.With().Str("component", "fastagi").Logger()
	m.agi = fastagi.NewServer(fastagi.Config{Addr: m.Config.AGIListen, Handler: m.hooks, Allow: m.Config.allow,
		MaxSessions: m.Config.AGIMaxSessions, EnvTimeout: m.Config.AGIEnvTimeout, CommandTimeout: m.Config.AGICommandTimeout,
		DrainTimeout: m.Config.ShutdownTimeout, Log: alog})
	m.mx = newMetrics(m)
	if err := m.agi.Open(ctx); err != nil {
		return &ConfigError{Var: "AGI_LISTEN", Err: err}
	}
	alog.Info().Str("addr", m.agi.Addr().String()).Msg("fastagi listening")
	return nil
}

// openHTTP starts the HTTP server (PRESENCED_HTTP_LISTEN): the API, the
// streams, the board, metrics, and the facades mounted on it.
func (m *Main) openHTTP(ctx context.Context) error {
	if m.Config.HTTPListen == "" {
		return nil
	}
	mounts, err := m.xucMounts()
	if err != nil {
		return &ConfigError{Var: "XUC_USERS", Err: err}
	}
	apps, err := m.appwsMounts()
	if err != nil {
		return &ConfigError{Var: "APPWS_APPS", Err: err}
	}
	mounts = append(mounts, apps...)
	ph, err := m.apiPhones()
	if err != nil {
		return &ConfigError{Var: "PHONES", Err: err}
	}
	hlog := m.Log.With().Str("component", "http").Logger()
	cfg := httpapi.Config{Version: buildVersion(), Demo: m.Config.Demo, Setup: m.Config.setup(), Mounts: mounts, Addr: m.Config.HTTPListen, ShutdownTimeout: 5 * time.Second, Registry: m.mx.reg, Log: hlog, Checks: m.readiness(),
		Tokens: m.Config.tokens, Hints: m.hints, Presence: m.svc.Client(), Hub: m.hub, Webhooks: m.hooksOut, Roster: m.names, Forwards: m.fwd, Phones: ph,
		Hosts: m.Config.hosts, Origins: m.Config.origins, TrustedProxies: m.Config.proxies, BodyTimeout: m.Config.HTTPBodyTimeout, MaxConns: m.httpMaxConns()}
	if m.cluster != nil {
		cfg.Cluster = m.clusterStatus
		cfg.Stale = m.cutSince
	}
	if m.calls != nil { // with AMI (a nil *Book would be a non-nil interface)
		cfg.Calls, cfg.Dialer = m.calls, m.dialer
	}
	m.http = httpapi.New(cfg)
	if err := m.http.Open(ctx); err != nil {
		return &ConfigError{Var: "HTTP_LISTEN", Err: err}
	}
	hlog.Info().Str("addr", m.http.Addr().String()).Msg("http listening")
	return nil
}

// readiness lists what /readyz reports: the store, ARI and AMI.
func (m *Main) readiness() []httpapi.Check {
	status := func(f func() (bool, error)) func() string {
		return func() string {
			ok, err := f()
			switch {
			case ok:
				return ""
			case err != nil:
				// Errors quote URLs and frames back: nothing secret may
				// reach /readyz, which a read token sees.
				return "not connected: " + m.Config.redactor().String(err.Error())
			}
			return "connecting"
		}
	}
	checks := []httpapi.Check{{Name: "store", Problem: func() string { return "" }}}
	if m.cluster != nil {
		checks = append(checks, httpapi.Check{Name: "cluster", Problem: func() string {
			_, why := m.cluster.Cut(time.Now())
			return m.Config.redactor().String(why)
		}})
	}
	if m.ari != nil {
		checks = append(checks, httpapi.Check{Name: "ari", Problem: status(m.ari.Status)})
	} else {
		checks = append(checks, httpapi.Check{Name: "ari", NotConfigured: true, Problem: func() string { return "" }})
	}
	if m.ami != nil {
		checks = append(checks, httpapi.Check{Name: "ami", Problem: status(m.ami.Status)})
	} else {
		checks = append(checks, httpapi.Check{Name: "ami", NotConfigured: true, Problem: func() string { return "" }})
	}
	return checks
}

// startFeeds starts the connections to Asterisk that are configured; each
// retries on its own until Close.
func (m *Main) startFeeds() {
	ctx, stop := context.WithCancel(context.Background())
	m.ctx, m.stop = ctx, stop
	if m.cluster != nil {
		// Every node follows the cluster's records: timers of users set
		// elsewhere, and presence this site's Asterisk has yet to hold.
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			_ = m.cluster.Records.Watch(ctx, m.svc.Changed)
		}()
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			_ = m.cluster.Forwards.Watch(ctx, m.fwd.Changed)
		}()
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			m.cluster.Announce(ctx, m.self())
		}()
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			m.cluster.Probe(ctx)
		}()
	}
	if m.mirror != nil {
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			m.mirror.Run(ctx)
		}()
	}
	if m.dpma != nil {
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			m.dpma.Run(ctx)
		}()
	}
	// Without ARI or AMI, what to set was said at start (Config.setup).
	if m.ari != nil {
		m.feeds.Add(1)
		go func() {
			defer m.feeds.Done()
			m.ari.Run(ctx)
		}()
	}
	if m.ami == nil {
		return
	}
	m.feeds.Add(1)
	go func() {
		defer m.feeds.Done()
		m.ami.Run(ctx)
	}()
}

// loadHints makes the table hold the hints of PRESENCED_DIALPLAN: new and
// changed ones are put, ones no longer in the file removed, and what
// changed is published. A file that cannot be read is an error and changes
// nothing; problems inside it are logged, and the hints Asterisk would load
// are used, as Asterisk does. It runs at start and on SIGHUP (ReloadHints).
func (m *Main) loadHints() error {
	log := m.Log.With().Str("component", "dialplan").Str("file", m.Config.Dialplan).Logger()
	dp, probs, err := loadDialplan(m.Config.Dialplan)
	if err != nil {
		return fmt.Errorf("reading PRESENCED_DIALPLAN: %w", err)
	}
	const shown = 20
	for i, p := range probs {
		if i == shown {
			log.Warn().Int("more", len(probs)-shown).Msg("more dialplan problems: run presenced dialplan check")
			break
		}
		log.Warn().Str("problem", p.String()).Msg("dialplan problem")
	}
	var hs []hints.Hint
	for _, h := range dp.Hints {
		if !h.Pattern {
			hs = append(hs, h.Hint)
		}
	}
	changed, removed := m.hints.ReplaceHints(hs)
	log.Info().Int("hints", len(hs)).Int("changed", changed).Int("removed", removed).
		Int("problems", len(probs)).Msg("hints read from the dialplan")
	return nil
}

// flushPending writes, once AMI is up again, the presence that waited for
// Asterisk (timed presence that ended while it was away).
func (m *Main) flushPending() {
	m.feeds.Add(1)
	go func() {
		defer m.feeds.Done()
		ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
		defer cancel()
		if err := m.svc.FlushPending(ctx); err != nil && m.ctx.Err() == nil {
			m.Log.Warn().Err(err).Str("component", "presence").Msg("presence that waited for Asterisk could not all be written")
		}
	}()
}

// ReloadHints reads PRESENCED_DIALPLAN again (after the admin's `dialplan
// reload`); without one, or while AMI (whose hints are the running
// dialplan's and win) is connected, it does nothing.
func (m *Main) ReloadHints() error {
	if err := m.loadRoster(); err != nil {
		m.Log.Error().Err(err).Str("component", "board").Msg("roster not reloaded; the names stay as they were")
	}
	if m.Config.Dialplan == "" {
		return nil
	}
	if m.ami != nil {
		if up, _ := m.ami.Status(); up {
			m.Log.Info().Str("component", "dialplan").Msg("not reloading PRESENCED_DIALPLAN: AMI provides the running dialplan's hints")
			return nil
		}
	}
	return m.loadHints()
}

// reloadTokens reads the API tokens again (SIGHUP). The API stays in the
// mode it started in: from tokens to none would open it, and the other
// way round would close a loopback-only API to its local users, both at
// a signal; that takes a restart.
func (m *Main) reloadTokens() {
	if m.Config.tokens == nil {
		return
	}
	log := m.Log.With().Str("component", "http").Logger()
	t, err := m.Config.loadTokens()
	switch {
	case err != nil:
		log.Error().Err(err).Msg("API tokens not reloaded; the old ones stay")
	case (t.Len() == 0) != (m.Config.tokens.Len() == 0):
		log.Error().Msg("API tokens not reloaded: going from tokens to none, or from none to tokens, takes a restart")
	default:
		m.Config.tokens.Replace(t)
		closed := 0
		if m.http != nil {
			// Streams opened with a token now gone (or with less) end.
			closed = m.http.TokensChanged()
		}
		log.Info().Int("tokens", t.Len()).Int("streams_closed", closed).Msg("API tokens reloaded")
	}
}

// httpMaxConns is PRESENCED_HTTP_MAX_CONNS, lowered when the process may
// not open that many files: FastAGI sessions, the store and Asterisk's
// connections must still get theirs.
func (m *Main) httpMaxConns() int {
	n := m.Config.HTTPMaxConns
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(1<<31) {
		if room := int(rl.Cur) - m.Config.AGIMaxSessions - 256; room < n {
			n = max(room, 16)
			m.Log.Warn().Int("PRESENCED_HTTP_MAX_CONNS", m.Config.HTTPMaxConns).Int("used", n).Uint64("open_files_limit", rl.Cur).
				Msg("the open files limit is too low for PRESENCED_HTTP_MAX_CONNS; raise it (LimitNOFILE= in systemd)")
		}
	}
	return n
}

// AGIAddr returns the FastAGI listen address.
func (m *Main) AGIAddr() net.Addr { return m.agi.Addr() }

// Close stops the parts in reverse order of Open: the HTTP server, the
// feeds, the FastAGI server (draining sessions), the presence service,
// webhooks, the hub (writing what the change log lacks) and the store. It
// is safe to call after a failed Open.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		errs = append(errs, m.http.Close())
	}
	if m.stop != nil {
		m.stop()
		m.feeds.Wait()
	}
	if m.agi != nil {
		errs = append(errs, m.agi.Close())
	}
	if m.svc != nil {
		errs = append(errs, m.svc.Close())
	}
	if m.hooksOut != nil {
		errs = append(errs, m.hooksOut.Close())
	}
	if m.hub != nil {
		errs = append(errs, m.hub.Close())
	}
	m.cluster.Close()
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}
