// Package mirror shows another site's hints on this site's BLF keys (a
// cluster's cross-site BLF). A hint at Lyon such as
//
//	exten => 2001,hint,Stasis:presenced-remote-paris-2001,CustomPresence:2001
//
// uses a device presenced drives: Mirror follows the change log, where
// every site's hints are (paris/2001@internal), and sets the device to a
// state whose extension state is that of Paris's hint, so a phone in Lyon
// watching 2001 sees what a phone in Paris sees. (Presence needs no
// mirror: it is global, and every site's Asterisk holds it.)
//
// While this node is cut off from the cluster, it cannot know what the
// other sites' hints are: their devices show UNAVAILABLE rather than the
// last state heard (Idle, while the user may be talking at Paris), until
// the cluster answers again.
package mirror

import (
	"context"
	"sync"
	"time"

	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/rs/zerolog"
)

// Devices sets a Stasis device's state (ari.Client).
type Devices interface {
	SetDeviceState(ctx context.Context, name, state string) error
}

// Config configures a Mirror.
type Config struct {
	Hub *watch.Hub
	// Site is this node's; its own hints are not mirrored.
	Site string
	// Context is the context of the other sites' hints that are mirrored
	// (a device names a site and an extension, not a context).
	Context string
	// Uses reports whether some hint of this site uses a device (the hint
	// table): only those are driven.
	Uses func(device string) bool
	// Changed returns a channel closed when the devices this site's hints
	// use next change (hints.Table.DevicesChanged).
	Changed func() <-chan struct{}
	Devices Devices
	// Log gets each device that could not be set; it is set again at its
	// hint's next change.
	Log zerolog.Logger
	// Cut reports whether this node is cut off from the cluster (nil:
	// never), checked every CutEvery (default 500 ms).
	Cut      func() bool
	CutEvery time.Duration
}

// Mirror drives the remote devices of one site.
type Mirror struct {
	cfg  Config
	mu   sync.Mutex
	set  map[string]string // device: the state last set
	cut  bool              // cut off from the cluster, as last checked
	wake chan struct{}
}

// New returns a Mirror; Run it.
func New(cfg Config) *Mirror {
	if cfg.Cut == nil {
		cfg.Cut = func() bool { return false }
	}
	if cfg.CutEvery <= 0 {
		cfg.CutEvery = 500 * time.Millisecond
	}
	return &Mirror{cfg: cfg, set: map[string]string{}, wake: make(chan struct{}, 1)}
}

// Resync sets every mirrored device again (Asterisk restarted: Stasis
// device states do not survive it; ARI reconnected).
func (m *Mirror) Resync() {
	m.mu.Lock()
	clear(m.set)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// device returns the remote device that shows a hint, if it is mirrored.
func (m *Mirror) device(st hints.State) (string, bool) {
	if st.Site == "" || st.Site == m.cfg.Site || st.Context != m.cfg.Context {
		return "", false
	}
	d := hints.RemoteDevice(st.Site, st.Exten)
	return d, m.cfg.Uses(d)
}

// apply sets the device that shows st, unless it shows that already.
func (m *Mirror) apply(ctx context.Context, st hints.State) {
	d, ok := m.device(st)
	if !ok {
		return
	}
	ext := st.Extension
	if st.Removed {
		ext = hints.ExtRemoved
	}
	m.mu.Lock()
	if m.cut {
		ext = hints.ExtUnavailable // what Paris's hint is now, nobody here knows
	}
	state := hints.DeviceStateFor(ext).String()
	same := m.set[d] == state
	m.mu.Unlock()
	if same {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := m.cfg.Devices.SetDeviceState(actx, d, state)
	cancel()
	if err != nil {
		m.cfg.Log.Warn().Err(err).Str("device", d).Msg("could not show another site's hint; set again at its next change")
		return
	}
	m.mu.Lock()
	m.set[d] = state
	m.mu.Unlock()
}

// all applies the current state of every hint (at start, after Resync,
// and when this site's hints change).
func (m *Mirror) all(ctx context.Context) {
	for _, ev := range m.cfg.Hub.Current() {
		if st, ok := ev.Value.(hints.State); ok {
			m.apply(ctx, st)
		}
	}
}

// Run follows the change log until ctx ends.
func (m *Mirror) Run(ctx context.Context) {
	for ctx.Err() == nil {
		sub, _ := m.cfg.Hub.Subscribe(watch.Filter{All: true}, nil)
		m.all(ctx)
		m.follow(ctx, sub)
		sub.Close()
	}
}

// follow applies changes until ctx ends or the subscription is dropped
// (it fell too far behind: Run subscribes again, from a snapshot).
func (m *Mirror) follow(ctx context.Context, sub *watch.Sub) {
	changed := m.cfg.Changed()
	tick := time.NewTicker(m.cfg.CutEvery)
	defer tick.Stop()
	events := make(chan []*watch.Event)
	done := make(chan struct{})
	defer close(done)
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(events)
		_ = sub.Follow(nctx, func(evs []*watch.Event) {
			select {
			case events <- evs:
			case <-done:
			}
		})
	}()
	for {
		select {
		case evs, ok := <-events:
			if !ok {
				return
			}
			for _, ev := range evs {
				if st, ok := ev.Value.(hints.State); ok {
					m.apply(ctx, st)
				}
			}
		case <-changed:
			changed = m.cfg.Changed()
			m.all(ctx)
		case <-m.wake:
			m.all(ctx)
		case <-tick.C:
			cut := m.cfg.Cut()
			m.mu.Lock()
			turned := cut != m.cut
			m.cut = cut
			m.mu.Unlock()
			if turned {
				// Every device shows UNAVAILABLE, or, back, its hint again.
				m.all(ctx)
			}
		case <-ctx.Done():
			return
		}
	}
}
