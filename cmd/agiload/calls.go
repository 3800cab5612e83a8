package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/astemu"
)

// The call load: presenced with AMI, alone and with calls flowing, to
// tell what following calls costs the hooks. Both presenced log in to
// an emulated AMI of their own (the same hints), and each has a watcher
// of everything on Server-Sent Events; one AMI also sends the events of
// n calls going on at once (ringing 1 s, talking 4 s, hung up, again),
// in the frames a real Asterisk sends (BEHAVIOUR.md 4.15).

// startAMIPresenced starts a fake AMI with n hints and a presenced
// logged in to it, with a watcher of everything.
func startAMIPresenced(ctx context.Context, bin, data, name string, n int) (*child, *amitest.Server, error) {
	srv, err := amitest.New("presenced", "pw")
	if err != nil {
		return nil, nil, err
	}
	srv.Attach(astemu.New())
	hs := make([]amitest.Hint, n)
	for i := range hs {
		ext := fmt.Sprint(2000 + i)
		hs[i] = amitest.Hint{Exten: ext, Context: "internal", App: "PJSIP/" + ext + ",CustomPresence:" + ext, StatusText: "Idle"}
	}
	srv.SetHints(hs...)
	port, err := freePort()
	if err != nil {
		return nil, srv, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, srv, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PRESENCED_AGI_LISTEN="+port, "PRESENCED_HTTP_LISTEN="+httpPort, "PRESENCED_DATA_DIR="+filepath.Join(data, name),
		"PRESENCED_AGI_MAX_SESSIONS=4096", "PRESENCED_ARI_URL=", "PRESENCED_AMI_ADDR="+srv.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=pw")
	c, err := startChild(cmd, nil)
	if err != nil {
		return nil, srv, err
	}
	c.name, c.addr = name, port
	if err := waitListening(port); err != nil {
		c.stop()
		return nil, srv, err
	}
	// Ready: AMI logged in and listed.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + httpPort + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, srv, fmt.Errorf("%s did not get ready with AMI", name)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+httpPort+"/v1/events?all=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.stop()
		return nil, srv, err
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
		}
	}()
	return c, srv, nil
}

// runCalls keeps n calls going on srv until ctx ends: call i rings
// PJSIP/<2000+i> from an outside number, is answered a second later and
// hung up four seconds after, then the next call on that phone. It
// returns the AMI events sent.
func runCalls(ctx context.Context, srv *amitest.Server, n int) int {
	const ring, talk = time.Second, 4 * time.Second
	cycle := ring + talk
	step := cycle / time.Duration(3*n) // the 3n events of a cycle, evenly spread
	seq := 0
	sent := 0
	state := make([]int, n) // 0: idle, 1: ringing, 2: up
	ids := make([]string, n)
	tick := time.NewTicker(step)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % n {
		select {
		case <-ctx.Done():
			return sent
		case <-tick.C:
		}
		ext := 2000 + i
		ch := fmt.Sprintf("PJSIP/%d-%08x", ext, i)
		frame := func(event string, st int, desc, extra string) string {
			return fmt.Sprintf("Event: %s\r\nPrivilege: call,all\r\nChannel: %s\r\nChannelState: %d\r\nChannelStateDesc: %s\r\nCallerIDNum: %d\r\nCallerIDName: \r\n"+
				"ConnectedLineNum: 0427466347\r\nConnectedLineName: Caller %d\r\nLanguage: en\r\nAccountCode: \r\nContext: internal\r\nExten: %d\r\nPriority: 1\r\n"+
				"Uniqueid: %s\r\nLinkedid: 1796000000.%d\r\n%s\r\n", event, ch, st, desc, ext, i, ext, ids[i], i, extra)
		}
		switch state[i] {
		case 0:
			seq++
			ids[i] = fmt.Sprintf("1796000001.%d", seq)
			srv.Call(frame("Newchannel", 5, "Ringing", ""))
			state[i] = 1
		case 1:
			srv.Call(frame("Newstate", 6, "Up", ""))
			state[i] = 2
		default:
			srv.Call(frame("Hangup", 6, "Up", "Cause: 16\r\nCause-txt: Normal Clearing\r\n"))
			state[i] = 0
		}
		sent++
	}
}
