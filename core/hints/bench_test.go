package hints

import (
	"strconv"
	"testing"
)

// table10k has 10,000 hints, each with its phone, a second device and its
// presence provider.
func table10k() (*Table, []string) {
	tb := NewTable()
	devs := make([]string, 10000)
	for i := range devs {
		n := strconv.Itoa(10000 + i)
		devs[i] = "PJSIP/" + n
		tb.Put(Hint{Context: "from-internal", Exten: n, Devices: []string{devs[i], "Stasis:presenced-dnd-" + n}, Providers: []string{"CustomPresence:" + n}})
	}
	return tb, devs
}

// BenchmarkSetDevice: device-state changes into a table of 10,000 hints,
// each one changing its hint (NOT_INUSE <-> INUSE), on one goroutine.
func BenchmarkSetDevice(b *testing.B) {
	tb, devs := table10k()
	states := [2]DeviceState{InUse, NotInUse}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if len(tb.SetDevice(devs[i%len(devs)], states[(i/len(devs))%2])) != 1 {
			b.Fatal("no change")
		}
	}
}

// BenchmarkSetDeviceBaseline is the floor for SetDevice: storing the new
// state in a map under a mutex, nothing else.
func BenchmarkSetDeviceBaseline(b *testing.B) {
	tb, devs := table10k()
	states := [2]DeviceState{InUse, NotInUse}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tb.mu.Lock()
		tb.devices[devs[i%len(devs)]] = states[(i/len(devs))%2]
		tb.mu.Unlock()
	}
}

// BenchmarkSnapshot: the whole state of 10,000 hints.
func BenchmarkSnapshot(b *testing.B) {
	tb, _ := table10k()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if len(tb.Snapshot()) != 10000 {
			b.Fatal("short snapshot")
		}
	}
}
