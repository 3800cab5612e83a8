package mirror

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presenced/presenced/changelog/change"
	"github.com/presenced/presenced/changelog/watch"
	"github.com/presenced/presenced/core/hints"
	"github.com/presenced/presenced/internal/testenv"
)

type fakeDevices struct {
	mu   sync.Mutex
	sets []string
}

func (f *fakeDevices) SetDeviceState(_ context.Context, name, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, name+"="+state)
	return nil
}

func (f *fakeDevices) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sets)
}

func hintAt(site, exten, context string, e hints.ExtensionState, version uint64) change.Change {
	st := hints.State{Hint: hints.Hint{Site: site, Exten: exten, Context: context}, Extension: e}
	return change.Change{Kind: hints.KindHint, Key: st.Key(), Version: version, Value: st}
}

func waitSets(t *testing.T, f *fakeDevices, want ...string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprint("sets ", want), func() bool { return slices.Equal(f.got(), want) }, func() string { return fmt.Sprint(f.got()) })
}

// lyon is a node at Lyon: its hub, its hint table with a hint of Paris's
// 2001, and its devices.
func lyon() (*watch.Hub, *hints.Table, *fakeDevices) {
	table := hints.NewTable()
	table.Put(hints.Hint{Context: "internal", Exten: "2001", Devices: []string{hints.RemoteDevice("paris", "2001")}})
	return watch.New(watch.Config{Site: "lyon"}), table, &fakeDevices{}
}

// run runs m until the test ends.
func run(t *testing.T, m *Mirror) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// Lyon's hint of Paris's 2001 follows Paris's hint: its device is set
// when the mirror starts and at each change; Lyon's own hints, Paris's
// hints of another context, and devices no Lyon hint uses are not; a
// resync sets every device again; a device a reloaded dialplan starts
// using is set at once.
func TestMirror(t *testing.T) {
	hub, table, devs := lyon()
	m := New(Config{Hub: hub, Site: "lyon", Context: "internal", Uses: table.UsesDevice, Changed: table.DevicesChanged, Devices: devs})
	hub.Append(hintAt("paris", "2001", "internal", hints.ExtInUse, 1), hintAt("paris", "2002", "internal", hints.ExtBusy, 2))
	run(t, m)
	d := "Stasis:presenced-remote-paris-2001"
	waitSets(t, devs, d+"=INUSE")
	hub.Append(hintAt("lyon", "2001", "internal", hints.ExtBusy, 3), hintAt("paris", "2001", "other", hints.ExtBusy, 4),
		hintAt("paris", "2001", "internal", hints.ExtInUse|hints.ExtRinging, 5))
	waitSets(t, devs, d+"=INUSE", d+"=RINGINUSE")
	m.Resync()
	waitSets(t, devs, d+"=INUSE", d+"=RINGINUSE", d+"=RINGINUSE")
	table.Put(hints.Hint{Context: "internal", Exten: "2002", Devices: []string{hints.RemoteDevice("paris", "2002")}})
	waitSets(t, devs, d+"=INUSE", d+"=RINGINUSE", d+"=RINGINUSE", "Stasis:presenced-remote-paris-2002=BUSY")
	removed := hintAt("paris", "2001", "internal", hints.ExtIdle, 6)
	st := removed.Value.(hints.State)
	st.Removed = true
	removed.Value = st
	hub.Append(removed)
	waitSets(t, devs, d+"=INUSE", d+"=RINGINUSE", d+"=RINGINUSE", "Stasis:presenced-remote-paris-2002=BUSY", d+"=INVALID")
}

// While this node is cut off from the cluster, the other sites' hints
// are unknown here: their devices show UNAVAILABLE (not the last state
// heard), whatever the log still delivers; once the cluster answers
// again, each shows its hint again.
func TestMirrorCutOff(t *testing.T) {
	hub, table, devs := lyon()
	var cut atomic.Bool
	m := New(Config{Hub: hub, Site: "lyon", Context: "internal", Uses: table.UsesDevice, Changed: table.DevicesChanged, Devices: devs,
		Cut: cut.Load, CutEvery: time.Millisecond})
	hub.Append(hintAt("paris", "2001", "internal", hints.ExtIdle, 1))
	run(t, m)
	d := "Stasis:presenced-remote-paris-2001"
	waitSets(t, devs, d+"=NOT_INUSE")
	cut.Store(true)
	waitSets(t, devs, d+"=NOT_INUSE", d+"=UNAVAILABLE")
	hub.Append(hintAt("paris", "2001", "internal", hints.ExtInUse, 2)) // late news, while cut off
	cut.Store(false)
	waitSets(t, devs, d+"=NOT_INUSE", d+"=UNAVAILABLE", d+"=INUSE")
}
