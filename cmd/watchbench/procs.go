package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startPresenced runs the presenced binary with hints on PJSIP devices and
// ARI at ariURL, and returns its HTTP base URL once ARI is connected.
func startPresenced(bin, dir, ariURL string, nHints int) (string, func(), error) {
	var conf strings.Builder
	conf.WriteString("[internal]\n")
	for i := range nHints {
		fmt.Fprintf(&conf, "exten => %d,hint,PJSIP/%d\n", 1000+i, 1000+i)
	}
	confPath := filepath.Join(dir, "extensions.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PRESENCED_AGI_LISTEN=127.0.0.1:0", "PRESENCED_HTTP_LISTEN=127.0.0.1:0",
		"PRESENCED_DATA_DIR="+filepath.Join(dir, "data"), "PRESENCED_DIALPLAN="+confPath,
		"PRESENCED_ARI_URL="+ariURL, "PRESENCED_ARI_USER=bench", "PRESENCED_ARI_PASSWORD=bench", "PRESENCED_AMI_ADDR=",
		"PRESENCED_LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	stop := func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == "http listening" {
				a, _ := m["addr"].(string)
				addr <- a
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(20 * time.Second):
		stop()
		return "", nil, fmt.Errorf("presenced did not start listening")
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("presenced did not become ready (ARI)")
		}
	}
}

// startBare runs this program's baseline server.
func startBare() (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "bare")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", nil, fmt.Errorf("the bare server did not start: %w", err)
	}
	return "http://" + strings.TrimSpace(line), func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// mem is a server's memory as its /metrics says.
type mem struct{ heap, stack, rss, goroutines, gcs float64 }

// afterGC waits until the server has collected garbage twice from now,
// making it allocate by asking for /metrics (both servers serve it the
// same way), so that the heap figure is close to what is live rather
// than what is not yet collected; then reads its memory.
func afterGC(ctx context.Context, base string) (mem, error) {
	m0, err := readMem(ctx, base)
	if err != nil {
		return mem{}, err
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		m, err := readMem(ctx, base)
		if err != nil {
			return mem{}, err
		}
		if m.gcs >= m0.gcs+2 {
			return m, nil
		}
	}
	return mem{}, fmt.Errorf("%s did not collect garbage in 2 minutes", base)
}

func readMem(ctx context.Context, base string) (mem, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return mem{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m mem
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = v
		case "go_memstats_stack_inuse_bytes":
			m.stack = v
		case "process_resident_memory_bytes":
			m.rss = v
		case "go_goroutines":
			m.goroutines = v
		case "go_gc_duration_seconds_count":
			m.gcs = v
		}
	}
	return m, nil
}

// coalesced reads presenced's running total of coalesced changes.
func coalesced(ctx context.Context, base string) float64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "presenced_watch_coalesced_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
