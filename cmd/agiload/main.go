// Command agiload measures a FastAGI server under load, the way a busy
// Asterisk would load it: many concurrent presence/set hooks over loopback.
// It runs presenced (the built binary, as its own process, with its store
// in a temporary directory) and, in the same run, the floor: a bare
// hand-written FastAGI handler sending the same commands, also in its own
// process. Runs alternate between the two so that a noisy machine hurts
// both alike, and the report gives medians and ratios.
//
//	go build -o bin/presenced ./cmd/presenced
//	go run ./cmd/agiload -presenced bin/presenced -c 32 -d 5s -rounds 5
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/internal/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agiload:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("presenced", "bin/presenced", "the presenced binary to measure")
	conc := flag.Int("c", 32, "concurrent Asterisk clients")
	dur := flag.Duration("d", 5*time.Second, "duration of each run")
	rounds := flag.Int("rounds", 5, "runs of each server, alternating")
	serveFloor := flag.String("serve-floor", "", "internal: serve the floor on this address")
	few := flag.Bool("few", false, "internal: the floor reads a presence in one command")
	callsN := flag.Int("calls", 0, "also measure presenced with AMI, alone and with this many calls going on at once (each 5 s: ringing, talking, hung up), hooks alternating")
	clusterN := flag.Int("cluster", 0, "also measure a cluster of this many presenced on this machine (embedded NATS): hooks at the first node, and a hook at it seen by a watcher of the second")
	flag.Parse()
	if *serveFloor != "" {
		ln, err := net.Listen("tcp", *serveFloor)
		if err != nil {
			return err
		}
		fmt.Println(ln.Addr())
		return loadgen.ServeFloor(ln, *few)
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	floor, err := startChild(exec.Command(self, "-serve-floor", "127.0.0.1:0"), floorAddr)
	if err != nil {
		return fmt.Errorf("starting the floor: %w", err)
	}
	defer floor.stop()
	floor9, err := startChild(exec.Command(self, "-serve-floor", "127.0.0.1:0", "-few"), floorAddr)
	if err != nil {
		return fmt.Errorf("starting the floor: %w", err)
	}
	floor9.name = "floor-9"
	defer floor9.stop()
	data, err := os.MkdirTemp("", "agiload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	// presenced gets a free port picked here, rather than reporting one, so
	// that it can run with any log level (PRESENCED_LOG_LEVEL from the
	// environment applies).
	port, err := freePort()
	if err != nil {
		return err
	}
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	pcmd := exec.Command(*bin, "serve")
	pcmd.Env = append(os.Environ(), "PRESENCED_AGI_LISTEN="+port, "PRESENCED_HTTP_LISTEN="+httpPort, "PRESENCED_DATA_DIR="+filepath.Join(data, "d"),
		"PRESENCED_AGI_MAX_SESSIONS=4096")
	pres, err := startChild(pcmd, nil)
	if err != nil {
		return fmt.Errorf("starting presenced: %w", err)
	}
	if err := waitListening(port); err != nil {
		return fmt.Errorf("starting presenced: %w", err)
	}
	pres.addr = port
	defer pres.stop()
	servers := []*child{floor, floor9, pres}
	callsCtx, stopCalls := context.WithCancel(context.Background())
	defer stopCalls()
	var callsSent chan int
	if *callsN > 0 {
		quiet, quietAMI, err := startAMIPresenced(callsCtx, *bin, data, "presenced+ami", *callsN)
		if quietAMI != nil {
			defer quietAMI.Close()
		}
		if err != nil {
			return fmt.Errorf("starting presenced with AMI: %w", err)
		}
		defer quiet.stop()
		busy, busyAMI, err := startAMIPresenced(callsCtx, *bin, data, "presenced+calls", *callsN)
		if busyAMI != nil {
			defer busyAMI.Close()
		}
		if err != nil {
			return fmt.Errorf("starting presenced with AMI and calls: %w", err)
		}
		defer busy.stop()
		callsSent = make(chan int, 1)
		go func() { callsSent <- runCalls(callsCtx, busyAMI, *callsN) }()
		servers = append(servers, quiet, busy)
	}
	var nodes []*child
	var nodeHTTP []string
	if *clusterN > 0 {
		nodes, nodeHTTP, err = startCluster(*bin, data, *clusterN)
		defer stopAll(nodes)
		if err != nil {
			return fmt.Errorf("starting the cluster: %w", err)
		}
		servers = append(servers, nodes[0])
	}

	fmt.Printf("agiload: %d concurrent clients, %v per run, %d rounds, GOMAXPROCS of each process = %d CPUs\n\n", *conc, *dur, *rounds, numCPU())
	fmt.Println("| round | server | sessions/s | p50 | p99 | errors | server CPU per session |")
	fmt.Println("|---|---|---|---|---|---|---|")
	stats := map[string][]row{}
	ctx := context.Background()
	// A short warm-up of each, not reported.
	for _, c := range servers {
		loadgen.Run(ctx, c.addr, *conc, time.Second)
	}
	for r := 1; r <= *rounds; r++ {
		for _, c := range servers {
			cpu0 := c.cpu()
			res := loadgen.Run(ctx, c.addr, *conc, *dur)
			row := row{res: res, cpuPer: time.Duration(float64(c.cpu()-cpu0) / float64(max(res.Sessions, 1)))}
			stats[c.name] = append(stats[c.name], row)
			if res.FirstErr != nil {
				fmt.Fprintf(os.Stderr, "agiload: %s: %d errors, the first: %v\n", c.name, res.Errors, res.FirstErr)
			}
			fmt.Printf("| %d | %s | %.0f | %v | %v | %d | %v |\n", r, c.name, res.Rate(), res.Percentile(50).Round(time.Microsecond),
				res.Percentile(99).Round(time.Microsecond), res.Errors, row.cpuPer.Round(time.Microsecond))
		}
	}
	f, f9, p := median(stats["floor"]), median(stats["floor-9"]), median(stats["presenced"])
	fmt.Println()
	for _, m := range []struct {
		name string
		s    summary
	}{{"floor (13 commands)", f}, {"floor-9 (9 commands)", f9}, {"presenced", p}} {
		fmt.Printf("median %s: %.0f sessions/s, p50 %v, p99 %v, CPU %v/session\n", m.name, m.s.rate, m.s.p50, m.s.p99, m.s.cpu)
	}
	fmt.Printf("presenced/floor: throughput %.2f, p99 %.2fx; presenced/floor-9: throughput %.2f, p99 %.2fx\n",
		p.rate/f.rate, float64(p.p99)/float64(f.p99), p.rate/f9.rate, float64(p.p99)/float64(f9.p99))
	if callsSent != nil {
		q, b := median(stats["presenced+ami"]), median(stats["presenced+calls"])
		stopCalls()
		fmt.Printf("median presenced+ami: %.0f sessions/s, p50 %v, p99 %v, CPU %v/session\n", q.rate, q.p50, q.p99, q.cpu)
		fmt.Printf("median presenced+calls (%d calls at once, %d AMI call events sent): %.0f sessions/s, p50 %v, p99 %v, CPU %v/session\n",
			*callsN, <-callsSent, b.rate, b.p50, b.p99, b.cpu)
		fmt.Printf("presenced+calls/presenced+ami: throughput %.2f, p50 %.2fx, p99 %.2fx\n", b.rate/q.rate, float64(b.p50)/float64(q.p50), float64(b.p99)/float64(q.p99))
	}
	if len(nodes) == 0 {
		return nil
	}
	c := median(stats[nodes[0].name])
	fmt.Printf("median cluster (hooks at node 1 of %d): %.0f sessions/s, p50 %v, p99 %v, CPU %v/session (node 1 only)\n", len(nodes), c.rate, c.p50, c.p99, c.cpu)
	fmt.Printf("cluster/presenced alone: throughput %.2f, p99 %.2fx\n", c.rate/p.rate, float64(c.p99)/float64(p.p99))
	// A hook, then the change at a watcher: alone, the same process; in
	// the cluster, a watcher of node 2. Alternated, medians of the rounds.
	var alone, across [][]time.Duration
	for range *rounds {
		a, err := watchLatency(ctx, pres.addr, httpPort, 100)
		if err != nil {
			return fmt.Errorf("watch latency, alone: %w", err)
		}
		x, err := watchLatency(ctx, nodes[0].addr, nodeHTTP[min(1, len(nodes)-1)], 100)
		if err != nil {
			return fmt.Errorf("watch latency, across nodes: %w", err)
		}
		alone, across = append(alone, a), append(across, x)
	}
	med := func(runs [][]time.Duration, p float64) time.Duration {
		var v []time.Duration
		for _, r := range runs {
			v = append(v, percentile(r, p))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Printf("hook to watcher, alone (same process): p50 %v, p99 %v\n", med(alone, 50), med(alone, 99))
	fmt.Printf("hook at node 1 to a watcher of node 2: p50 %v, p99 %v (%.2fx, %.2fx)\n", med(across, 50), med(across, 99),
		float64(med(across, 50))/float64(med(alone, 50)), float64(med(across, 99))/float64(med(alone, 99)))
	return nil
}

type row struct {
	res    loadgen.Result
	cpuPer time.Duration
}

type summary struct {
	rate          float64
	p50, p99, cpu time.Duration
}

func median(rows []row) summary {
	var rates []float64
	var p50, p99, cpu []time.Duration
	for _, r := range rows {
		rates = append(rates, r.res.Rate())
		p50 = append(p50, r.res.Percentile(50))
		p99 = append(p99, r.res.Percentile(99))
		cpu = append(cpu, r.cpuPer)
	}
	slices.Sort(rates)
	slices.Sort(p50)
	slices.Sort(p99)
	slices.Sort(cpu)
	m := len(rows) / 2
	return summary{rates[m], p50[m].Round(time.Microsecond), p99[m].Round(time.Microsecond), cpu[m].Round(time.Microsecond)}
}

// child is a server process.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string
}

func floorAddr(line string) string {
	if _, err := net.ResolveTCPAddr("tcp", line); err == nil {
		return line
	}
	return ""
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitListening waits until addr accepts connections.
func waitListening(addr string) error { return waitListeningFor(addr, 20*time.Second) }

// waitListeningFor waits up to d until addr accepts connections.
func waitListeningFor(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startChild starts cmd and, when addrOf is not nil, waits for a line
// (stdout or stderr) from which it reads the listen address. The child's
// output is read to its end either way, so that it never blocks on it.
func startChild(cmd *exec.Cmd, addrOf func(string) string) (*child, error) {
	name := "floor"
	if filepath.Base(cmd.Path) != filepath.Base(os.Args[0]) {
		name = "presenced"
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if addrOf == nil {
				continue
			}
			if a := addrOf(sc.Text()); a != "" && !sent {
				found <- a
				sent = true
			}
		}
	}()
	if addrOf == nil {
		return &child{name: name, cmd: cmd}, nil
	}
	select {
	case a := <-found:
		return &child{name: name, cmd: cmd, addr: a}, nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not report its address", cmd.Path)
	}
}

// cpu returns the process's user plus system CPU time so far.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: utime is the 14th field
	// of the whole line, stime the 15th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
	}
}

func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	return n
}
