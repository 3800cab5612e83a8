package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/internal/loadgen"
)

// startCluster starts n presenced as one cluster on this machine, each
// embedding a NATS server routed to the others', and waits until each
// listens for FastAGI (a node waits for the cluster first).
func startCluster(bin, data string, n int) ([]*child, []string, error) {
	type ports struct{ agi, http, nats, route string }
	ps := make([]ports, n)
	for i := range ps {
		for _, p := range []*string{&ps[i].agi, &ps[i].http, &ps[i].nats, &ps[i].route} {
			a, err := freePort()
			if err != nil {
				return nil, nil, err
			}
			*p = a
		}
	}
	nodes := make([]*child, n)
	https := make([]string, n)
	for i := range ps {
		var peers []string
		for j := range ps {
			if j != i {
				peers = append(peers, ps[j].route)
			}
		}
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(os.Environ(), "PRESENCED_AGI_LISTEN="+ps[i].agi, "PRESENCED_HTTP_LISTEN="+ps[i].http,
			"PRESENCED_DATA_DIR="+filepath.Join(data, fmt.Sprintf("n%d", i+1)), "PRESENCED_AGI_MAX_SESSIONS=4096",
			fmt.Sprintf("PRESENCED_NODE=n%d", i+1), "PRESENCED_NATS_LISTEN="+ps[i].nats, "PRESENCED_CLUSTER_LISTEN="+ps[i].route,
			"PRESENCED_CLUSTER_PEERS="+strings.Join(peers, ","))
		c, err := startChild(cmd, nil)
		if err != nil {
			return nil, nil, err
		}
		c.name = fmt.Sprintf("cluster-n%d", i+1)
		c.addr = ps[i].agi
		nodes[i], https[i] = c, ps[i].http
	}
	for _, c := range nodes {
		if err := waitListeningFor(c.addr, 3*time.Minute); err != nil {
			return nodes, nil, fmt.Errorf("starting %s: %w", c.name, err)
		}
	}
	return nodes, https, nil
}

// watchLatency runs k presence/set hooks one after another at agiAddr
// and measures, for each, the time from the hook's start until a watcher
// of watchHTTP (an SSE stream) has the change: a hook at one node, seen
// on another.
func watchLatency(ctx context.Context, agiAddr, watchHTTP string, k int) ([]time.Duration, error) {
	const user = "9001"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+watchHTTP+"/v1/events?providers=CustomPresence:"+user, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	events := make(chan struct{}, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: presence" {
				events <- struct{}{}
			}
		}
		close(events)
	}()
	ast := loadgen.NewAsterisk()
	var out []time.Duration
	for i := range k {
		t0 := time.Now()
		if err := ast.Session(ctx, agiAddr, user, i%2 == 0); err != nil {
			return nil, err
		}
		select {
		case _, ok := <-events:
			if !ok {
				return nil, fmt.Errorf("the event stream ended")
			}
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("hook %d: no event within 10 s", i)
		}
		out = append(out, time.Since(t0))
	}
	slices.Sort(out)
	return out, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)].Round(time.Microsecond)
}

// stopAll stops children at once.
func stopAll(cs []*child) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
	}
	wg.Wait()
}
