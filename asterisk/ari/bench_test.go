package ari

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/ari/aritest"
)

// BenchmarkResync: subscribe an application to 5,000 devices and read
// each one's state (the ARI half of a full resync).
func BenchmarkResync(b *testing.B) {
	srv, err := aritest.New("ari", "ari")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cl := &Client{URL: srv.URL(), User: "ari", Password: "ari"}
	devs := make([]string, 5000)
	for i := range devs {
		devs[i] = fmt.Sprint("PJSIP/", 10000+i)
		srv.SetDevice(devs[i], "NOT_INUSE")
	}
	ctx := context.Background()
	// The application exists while its websocket is connected.
	d := newDevices(devs...)
	d.notify = make(chan string, 20000)
	f := &Feed{Client: cl, App: "presenced", Devices: d, Log: zerolog.Nop()}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.Run(fctx); close(done) }()
	defer func() { cancel(); <-done }()
	for f.Resyncs() == 0 {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		if err := f.resync(ctx, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResyncBaseline: 5,000 plain GETs of a device state, the floor.
func BenchmarkResyncBaseline(b *testing.B) {
	srv, err := aritest.New("ari", "ari")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cl := &Client{URL: srv.URL(), User: "ari", Password: "ari"}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		for range 5000 {
			if _, err := cl.DeviceState(ctx, "PJSIP/10000"); err != nil {
				b.Fatal(err)
			}
		}
	}
}
