package main

import (
	"context"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/core/presence"
)

// startUsers is how many users BenchmarkStart's store holds.
const startUsers = 50000

// BenchmarkStart measures what one start of presenced costs with 50,000
// users on record and a full change log of their presence (two changes
// each: 100,000 entries, PRESENCED_LOG_RETENTION): the CPU (user and
// system) of the whole process from NewMain to Open's return, and its
// wall time. No Asterisk and no hints: the store, the log and the
// presence service, as a node whose feeds are yet to come up starts.
func BenchmarkStart(b *testing.B) {
	dir := b.TempDir()
	env := []string{"PRESENCED_LOG_RETENTION=100000", "PRESENCED_AMI_ADDR=", "PRESENCED_ARI_URL="}
	m := openMain(b, dir, env...)
	fill(b, m.svc.Client())
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	var cpu, wall time.Duration
	n := 0
	for b.Loop() {
		c0, t0 := cpuTime(b), time.Now()
		m := openMain(b, dir, env...)
		cpu, wall, n = cpu+cpuTime(b)-c0, wall+time.Since(t0), n+1
		b.StopTimer()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(n), "cpu-ms/start")
	b.ReportMetric(float64(wall.Milliseconds())/float64(n), "wall-ms/start")
}

// fill sets every user's presence twice, from 64 clients at once.
func fill(b *testing.B, c presence.Client) {
	var wg sync.WaitGroup
	users := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range users {
				user := strconv.Itoa(100000 + u)
				for _, v := range []presence.Value{{State: presence.Away, Message: "Lunch"}, {State: presence.DND, Message: "In a meeting until 15:00"}} {
					if _, _, err := c.Set(context.Background(), user, v); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	for u := range startUsers {
		users <- u
	}
	close(users)
	wg.Wait()
}

// cpuTime is the CPU this process has used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
