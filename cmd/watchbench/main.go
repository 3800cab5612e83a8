// Command watchbench measures presenced's watchers the way a large site
// loads them: thousands of WebSocket or Server-Sent Events clients on
// loopback subscribed to every hint, and a device state change arriving
// over ARI. It runs the presenced binary (its own process, its store in a
// temporary directory) against a fake ARI, and, in the same run, the
// baseline: a bare coder/websocket broadcast server (also its own process)
// sending the same bytes.
//
//	go build -o bin/presenced ./cmd/presenced
//	go run ./cmd/watchbench -presenced bin/presenced
//
// Figures: the time from the change (the fake ARI sending the event, or
// the broadcast request) until the last watcher has it, over many single
// changes (p50, p99, max); the server's memory per idle watcher (Go heap
// and stacks in use after two garbage collections, and resident set,
// before and after connecting); and
// a sustained rate of changes to fewer watchers.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/asterisk/ari/aritest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		if err := serveBare("127.0.0.1:0"); err != nil {
			fmt.Fprintln(os.Stderr, "watchbench bare:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "watchbench:", err)
		os.Exit(1)
	}
}

type config struct {
	n, changes, sustainedN, rate, hints int
	duration                            time.Duration
	only                                string
}

type result struct {
	name              string
	watchers, changes int
	complete          int
	lat               []time.Duration
	heapStackPer      float64 // bytes per watcher
	rssPer            float64
	coalesced         float64
}

func run() error {
	bin := flag.String("presenced", "bin/presenced", "the presenced binary to measure")
	var cfg config
	flag.IntVar(&cfg.n, "n", 10000, "watchers for the latency and memory figures")
	flag.IntVar(&cfg.changes, "changes", 200, "single changes to time")
	flag.IntVar(&cfg.sustainedN, "sustained-n", 1000, "watchers for the sustained rate")
	flag.IntVar(&cfg.rate, "rate", 1000, "changes per second in the sustained run")
	flag.DurationVar(&cfg.duration, "d", 10*time.Second, "length of the sustained run")
	flag.IntVar(&cfg.hints, "hints", 100, "hints in presenced's dialplan")
	flag.StringVar(&cfg.only, "only", "ws,sse,bare,sustained", "scenarios to run")
	flag.Parse()
	ctx := context.Background()

	fake, err := aritest.New("bench", "bench")
	if err != nil {
		return err
	}
	defer fake.Close()
	for i := range cfg.hints {
		fake.SetDevice(fmt.Sprintf("PJSIP/%d", 1000+i), "NOT_INUSE")
	}
	dir, err := os.MkdirTemp("", "watchbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Every scenario gets fresh server processes, so that each memory
	// figure starts from an idle server that never had watchers.
	var base, bareBase string
	var trigger *websocket.Conn // to the bare server
	var stops []func()
	defer func() {
		for _, f := range stops {
			f()
		}
	}()
	fresh := func() error {
		for _, f := range stops {
			f()
		}
		stops = nil
		_ = os.RemoveAll(dir + "/data")
		b, stop, err := startPresenced(*bin, dir, fake.URL(), cfg.hints)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
		bb, stopBare, err := startBare()
		if err != nil {
			return err
		}
		stops = append(stops, stopBare)
		base, bareBase = b, bb
		if trigger != nil {
			trigger.CloseNow()
			trigger = nil
		}
		time.Sleep(time.Second) // settle
		return nil
	}

	// Each change flips one device between INUSE and NOT_INUSE, so that it
	// is a real change of one hint.
	flips := map[int]int{}
	change := func(k int) {
		dev := k % cfg.hints
		flips[dev]++
		fake.SetDevice(fmt.Sprintf("PJSIP/%d", 1000+dev), [...]string{"NOT_INUSE", "INUSE"}[flips[dev]%2])
	}
	single := func(int) { change(0) }
	sample := []byte(`{"type":"hint","id":"0123456789abcdef:100","hint":{"context":"internal","exten":"1000","devices":["PJSIP/1000"],"providers":null,"state":"InUse","device_state":"INUSE","presence":{"state":"not_set"}}}`)
	// The bare server is sent its changes as presenced is: messages on a
	// websocket, without waiting for an answer.
	broadcast := func(int) {
		if trigger == nil {
			c, _, err := websocket.Dial(ctx, "ws"+bareBase[len("http"):]+"/trigger", nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "watchbench: the bare trigger:", err)
				return
			}
			trigger = c
		}
		_ = trigger.Write(ctx, websocket.MessageText, sample)
	}

	fmt.Printf("watchbench: %s, %d CPUs, %s; -n %d -changes %d -sustained-n %d -rate %d -d %v\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), cfg.n, cfg.changes, cfg.sustainedN, cfg.rate, cfg.duration)
	var results []result
	want := func(s string) bool { return slices.Contains(strings.Split(cfg.only, ","), s) }
	scenarios := []struct {
		only, name, kind string
		sustained        bool
	}{
		{"ws", "presenced WebSocket", "ws", false},
		{"sse", "presenced SSE", "sse", false},
		{"bare", "bare coder/websocket broadcast", "bare", false},
		{"sustained", "presenced WebSocket, sustained", "ws", true},
		{"sustained", "presenced SSE, sustained", "sse", true},
		{"sustained", "bare broadcast, sustained", "bare", true},
	}
	for _, sc := range scenarios {
		if !want(sc.only) {
			continue
		}
		if err := fresh(); err != nil {
			return err
		}
		p := &pool{kind: sc.kind, base: base}
		trigger := change
		if !sc.sustained {
			trigger = single
		}
		if sc.kind == "bare" {
			p.base, trigger = bareBase, broadcast
		}
		var r result
		var err error
		if sc.sustained {
			r, err = sustained(ctx, sc.name, p, cfg.sustainedN, cfg.rate, cfg.duration, trigger)
		} else {
			r, err = latency(ctx, sc.name, p, cfg.n, cfg.changes, trigger)
		}
		if err != nil {
			return err
		}
		// The baseline sends the bytes presenced sent for a change.
		if s := p.sample.Load(); s != nil {
			sample = *s
		}
		results = append(results, r)
	}
	report(results)
	return nil
}

// latency connects n watchers, measures the memory they take, then times
// single changes one after another.
func latency(ctx context.Context, name string, p *pool, n, changes int, trigger func(int)) (result, error) {
	tr := newTracker(changes, n)
	p.tr.Store(tr)
	before, err := afterGC(ctx, p.base)
	if err != nil {
		return result{}, err
	}
	co := coalesced(ctx, p.base)
	if err := p.open(ctx, n); err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	defer p.close()
	time.Sleep(2 * time.Second) // idle
	after, err := afterGC(ctx, p.base)
	if err != nil {
		return result{}, err
	}
	r := result{name: name, watchers: n, changes: changes,
		heapStackPer: (after.heap + after.stack - before.heap - before.stack) / float64(n),
		rssPer:       (after.rss - before.rss) / float64(n)}
	for k := range changes {
		t0 := time.Now()
		trigger(k)
		select {
		case <-tr.done:
			r.lat = append(r.lat, time.Duration(tr.at[k].Load()-t0.UnixNano()))
			r.complete++
		case <-time.After(30 * time.Second):
			return r, fmt.Errorf("%s: change %d reached %d of %d watchers in 30s", name, k, int64(n)-tr.left[k].Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.coalesced = coalesced(ctx, p.base) - co
	fmt.Fprintf(os.Stderr, "%s: done\n", name)
	return r, nil
}

// sustained sends changes at a steady rate to n watchers and times each
// from when it was sent until the last watcher had it.
func sustained(ctx context.Context, name string, p *pool, n, rate int, d time.Duration, trigger func(int)) (result, error) {
	changes := int(float64(rate) * d.Seconds())
	tr := newTracker(changes, n)
	p.tr.Store(tr)
	co := coalesced(ctx, p.base)
	if err := p.open(ctx, n); err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	defer p.close()
	time.Sleep(time.Second)
	sent := make([]int64, changes)
	period := time.Second / time.Duration(rate)
	start := time.Now()
	for k := range changes {
		if wait := time.Until(start.Add(time.Duration(k) * period)); wait > 0 {
			time.Sleep(wait)
		}
		sent[k] = time.Now().UnixNano()
		trigger(k)
	}
	deadline := time.After(30 * time.Second)
	r := result{name: name, watchers: n, changes: changes}
wait:
	for r.complete < changes {
		select {
		case <-tr.done:
			r.complete++
		case <-deadline:
			break wait
		}
	}
	for k := range changes {
		if at := tr.at[k].Load(); at != 0 {
			r.lat = append(r.lat, time.Duration(at-sent[k]))
		}
	}
	if p.kind != "bare" {
		r.coalesced = coalesced(ctx, p.base) - co
	}
	fmt.Fprintf(os.Stderr, "%s: done\n", name)
	return r, nil
}

func waitCount(ctx context.Context, base string, n int) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/count", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		var b [16]byte
		m, _ := resp.Body.Read(b[:])
		resp.Body.Close()
		if c, _ := strconv.Atoi(string(b[:m])); c >= n {
			return
		}
	}
}

func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func report(rs []result) {
	fmt.Println("| scenario | watchers | changes (complete) | p50 | p99 | max | heap+stack per idle watcher | RSS per idle watcher | coalesced |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		memCol := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f KiB", v/1024)
		}
		fmt.Printf("| %s | %d | %d (%d) | %v | %v | %v | %s | %s | %.0f |\n", r.name, r.watchers, r.changes, r.complete,
			pct(r.lat, 0.5).Round(10*time.Microsecond), pct(r.lat, 0.99).Round(10*time.Microsecond), pct(r.lat, 1).Round(10*time.Microsecond),
			memCol(r.heapStackPer), memCol(r.rssPer), r.coalesced)
	}
}
