package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/cdp"
	"github.com/presenced/presenced/internal/testenv"
)

// browser starts headless Chromium, or skips the test when Chromium is
// not installed, unless PRESENCED_BROWSER_TESTS=require (as .ci/run sets
// it, after installing Debian's chromium): then its absence fails.
func browser(t *testing.T) *cdp.Browser {
	t.Helper()
	if _, err := os.Stat(cdp.Path); err != nil {
		if os.Getenv("PRESENCED_BROWSER_TESTS") == "require" {
			t.Fatalf("PRESENCED_BROWSER_TESTS=require but %s is missing", cdp.Path)
		}
		t.Skipf("%s not installed (apt-get install chromium); set PRESENCED_BROWSER_TESTS=require to fail instead", cdp.Path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := cdp.Launch(ctx, cdp.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// artifacts is where browser tests keep their screenshots:
// $PRESENCED_ARTIFACTS, or artifacts/ at the top of the repository.
func artifacts(t *testing.T) string {
	dir := os.Getenv("PRESENCED_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "board")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The board against the binary, with the fake ARI and AMI, in headless
// Chromium: tiles from the hints, a device change seen live, presence set
// from the page reaching Asterisk, the stream killed (presenced stopped)
// and the indicator saying so, then the recovery showing what changed
// while the board was away; screenshots at phone and desktop width.
func TestBoardInBrowser(t *testing.T) {
	testenv.Long(t)
	b := browser(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	fari := fakeARI(t)
	_, fami := fakeAMI(t)
	var hs []amitest.Hint
	conf := "[internal]\n"
	roster := "extension,devices,name\n"
	for i, name := range []string{"Alice Archer", "Bob Baker", "Carol Cole", "Dan Drake"} {
		ext := fmt.Sprint(1001 + i)
		fari.SetDevice("PJSIP/"+ext, "NOT_INUSE")
		hs = append(hs, amitest.Hint{Exten: ext, Context: "internal", App: "PJSIP/" + ext + ",CustomPresence:" + ext, Status: 0, StatusText: "Idle"})
		conf += "exten => " + ext + ",hint,PJSIP/" + ext + ",CustomPresence:" + ext + "\n"
		roster += ext + ",PJSIP/" + ext + "," + name + "\n"
	}
	fami.SetHints(hs...)
	for name, body := range map[string]string{"extensions.conf": conf, "users.csv": roster} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A fixed HTTP port, so that the page finds presenced again after it
	// is restarted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	const tok, readTok = "board-writer-token-0123456789", "board-reader-token-0123456789"
	env := []string{"PRESENCED_HTTP_LISTEN=" + httpAddr, "PRESENCED_API_TOKENS=write:" + tok + ",read:" + readTok,
		"PRESENCED_DIALPLAN=" + filepath.Join(dir, "extensions.conf"), "PRESENCED_ROSTER=" + filepath.Join(dir, "users.csv"),
		"PRESENCED_ARI_URL=" + fari.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari",
		"PRESENCED_AMI_ADDR=" + fami.Addr(), "PRESENCED_AMI_USER=presenced", "PRESENCED_AMI_SECRET=pw"}
	data := filepath.Join(dir, "data")
	p := startBinary(t, bin, data, env...)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	page, err := b.Open(ctx, "http://"+httpAddr+"/#token="+tok)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := page.WaitFor(wctx, expr); err != nil {
			var html string
			_ = page.Eval(ctx, "document.body.innerText", &html)
			t.Fatalf("%s: %v\npage:\n%s", what, err, html)
		}
	}
	tile := func(ext string) string { return `document.querySelector('.tile[data-key="` + ext + `@internal"]')` }
	wait("tiles", `document.querySelectorAll('.tile').length === 4 && document.getElementById('conn-text').textContent === 'Live'`)
	wait("names from the roster", tile("1001")+`.querySelector('.name').textContent === 'Alice Archer'`)
	wait("writable", `!document.getElementById('setter').hidden && document.getElementById('readonly').hidden`)

	// Voicemail waiting shows on the extension's tile, new messages only.
	fami.SetMailbox("1001@default", 2, 0)
	wait("1001 has voicemail", tile("1001")+`.querySelector('.vm').textContent === 'Voicemail: 2 new' && `+tile("1001")+`.getAttribute('aria-label').endsWith(', Voicemail: 2 new')`)
	fami.SetMailbox("1001@default", 0, 2)
	wait("1001's voicemail heard", tile("1001")+`.querySelector('.vm').textContent === ''`)

	// The recorded call of 1001 to 1002 (BEHAVIOUR.md 4.15): the tiles
	// say who rings whom, then who talks to whom and for how long.
	keep := map[string]bool{"Newchannel": true, "Newstate": true, "NewConnectedLine": true, "Hold": true, "Unhold": true, "Hangup": true}
	fami.Call(recordedFrames(t, "S1: 1001 (pjsua) calls 1002", "CoreShowChannels (S1-ringing)", keep)...)
	wait("1002 rings for 1001", tile("1002")+`.querySelector('.call').textContent === 'Ringing: User 1001 1001' && `+
		tile("1001")+`.querySelector('.call').textContent === 'Calling User 1002 1002'`)
	fami.Call(recordedFrames(t, "CoreShowChannels (S1-ringing)", "CoreShowChannels (S1-answered)", keep)...)
	wait("1001 talks to 1002", tile("1001")+`.querySelector('.call').textContent.startsWith('Talking to User 1002 1002, 0:0')`)
	fami.Call(recordedFrames(t, "S1: 1001 hangs up", "S2:", keep)...)
	wait("the call ended", tile("1001")+`.querySelector('.call').textContent === '' && `+tile("1002")+`.querySelector('.call').textContent === ''`)

	// A device change in Asterisk reaches the tile.
	fari.SetDevice("PJSIP/1001", "INUSE")
	wait("1001 in use", tile("1001")+`.classList.contains('s-InUse') && `+tile("1001")+`.querySelector('.word').textContent === 'In use'`)
	fari.SetDevice("PJSIP/1002", "RINGING")
	wait("1002 ringing", tile("1002")+`.classList.contains('s-Ringing')`)

	// Presence set on the page reaches Asterisk and comes back to the tile.
	msg := `In a meeting, "room 2"`
	if err := page.Eval(ctx, `(() => {
		document.getElementById('set-user').value = '1003';
		document.getElementById('set-state').value = 'dnd';
		document.getElementById('set-message').value = `+"`"+msg+"`"+`;
		document.getElementById('set-form').requestSubmit();
	})()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("set answered", `document.getElementById('set-result').textContent === 'Set for 1003'`)
	if got, _ := fami.Ast.ReadFunction("PRESENCE_STATE(CustomPresence:1003,value)"); got != "dnd" {
		t.Fatalf("Asterisk holds %q for 1003", got)
	}
	if got, _ := fami.Ast.ReadFunction("PRESENCE_STATE(CustomPresence:1003,message)"); got != msg {
		t.Fatalf("Asterisk holds message %q", got)
	}
	wait("1003 dnd on the tile", tile("1003")+`.querySelector('.pres').textContent === 'Do not disturb: '+`+"`"+msg+"`")

	// A forward from the board's form shows on the tile.
	if err := page.Eval(ctx, `document.getElementById('fwd-kind').value = 'unconditional'; document.getElementById('fwd-dest').value = '0612345678'; document.getElementById('fwd-on').click()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("forward answered", `document.getElementById('fwd-result').textContent === 'Forwarded to 0612345678 (1003)'`)
	wait("1003 forwarded on the tile", tile("1003")+`.querySelector('.fwd').textContent === 'Forwarded to 0612345678'`)
	if err := page.Eval(ctx, `document.getElementById('fwd-off').click()`, nil); err != nil {
		t.Fatal(err)
	}
	wait("1003 no longer forwarded", tile("1003")+`.querySelector('.fwd').textContent === ''`)

	// The keyboard reaches the tiles: Tab from the last control of the
	// forms lands on the first tile.
	if err := page.Eval(ctx, `document.getElementById('fwd-off').focus()`, nil); err != nil {
		t.Fatal(err)
	}
	if err := page.Key(ctx, "Tab", false); err != nil {
		t.Fatal(err)
	}

	wait("a tile focused by Tab", `document.activeElement.classList.contains('tile') && document.activeElement.getAttribute('aria-label').startsWith('1001 Alice Archer: In use')`)

	// A read token: the page says it is read-only and offers no form.
	ro, err := b.Open(ctx, "http://"+httpAddr+"/#token="+readTok)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	if err := ro.WaitFor(wctx, `!document.getElementById('readonly').hidden && document.getElementById('setter').hidden && document.querySelectorAll('.tile').length === 4`); err != nil {
		t.Fatalf("read-only page: %v", err)
	}
	wcancel()
	// Without a token: the page asks for one.
	anon, err := b.Open(ctx, "http://"+httpAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 20*time.Second)
	if err := anon.WaitFor(wctx, `!document.getElementById('login').hidden`); err != nil {
		t.Fatalf("page without a token: %v", err)
	}
	wcancel()

	shots := artifacts(t)
	for _, v := range []struct {
		name          string
		width, height int
		mobile        bool
	}{{"phone", 390, 844, true}, {"desktop", 1280, 800, false}, {"wall-4k-large", 3840, 2160, false}} {
		if err := page.Viewport(ctx, v.width, v.height, v.mobile); err != nil {
			t.Fatal(err)
		}
		if v.name == "wall-4k-large" {
			if err := page.Eval(ctx, `document.getElementById('view').click()`, nil); err != nil {
				t.Fatal(err)
			}
			wait("large view", `document.body.classList.contains('large') && document.getElementById('view').getAttribute('aria-pressed') === 'true'`)
		}
		time.Sleep(200 * time.Millisecond)
		if err := page.Screenshot(ctx, filepath.Join(shots, "board-"+v.name+".png")); err != nil {
			t.Fatal(err)
		}
	}

	// The stream dies: the indicator says so. A change happens meanwhile.
	p.stop(t)
	wait("indicator down", `document.getElementById('conn').classList.contains('conn-down')`)
	fari.SetDevice("PJSIP/1001", "BUSY")
	// presenced is back: the board shows the true state without a reload.
	p = startBinary(t, bin, data, env...)
	defer p.stop(t)
	wait("indicator live again", `document.getElementById('conn-text').textContent === 'Live'`)
	wait("1001 busy after the reconnect", tile("1001")+`.classList.contains('s-Busy')`)
	wait("1003 still dnd", tile("1003")+`.querySelector('.pres').textContent.startsWith('Do not disturb')`)
}

// The board with 2,000 hints while 200 device changes a second stream in:
// every change must land (the final state of every tile is checked), and
// the frame times and the catch-up time are logged and written to
// artifacts/board/load.txt for BENCHMARKS.md (no timed assertion).
// PRESENCED_BOARD_LOAD sets how long the stream runs (default 5s).
func TestBoardUnderLoad(t *testing.T) {
	testenv.Long(t)
	b := browser(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	fari := fakeARI(t)
	const n = 2000
	conf := "[internal]\n"
	for i := range n {
		ext := fmt.Sprint(2000 + i)
		fari.SetDevice("PJSIP/"+ext, "NOT_INUSE")
		conf += "exten => " + ext + ",hint,PJSIP/" + ext + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "extensions.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, filepath.Join(dir, "data"), "PRESENCED_DIALPLAN="+filepath.Join(dir, "extensions.conf"),
		"PRESENCED_ARI_URL="+fari.URL(), "PRESENCED_ARI_USER=ari", "PRESENCED_ARI_PASSWORD=ari", "PRESENCED_LOG_LEVEL=info")
	defer p.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	page, err := b.Open(ctx, "http://"+p.httpAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	if err := page.Viewport(ctx, 1920, 1080, false); err != nil {
		t.Fatal(err)
	}
	if err := page.WaitFor(ctx, `document.querySelectorAll('.tile').length === 2000 && document.getElementById('conn-text').textContent === 'Live'`); err != nil {
		t.Fatal(err)
	}
	// Record the interval between animation frames: first 120 frames of
	// the idle board (the baseline, about 2 s), then while the changes run.
	record := `(() => { window.frames_ = []; window.stopFrames_ = false; let last = 0;
		const f = (ts) => { if (last) frames_.push(ts - last); last = ts; if (!window.stopFrames_) requestAnimationFrame(f); };
		requestAnimationFrame(f); })()`
	stopRecord := func() []float64 {
		var frames []float64
		if err := page.Eval(ctx, `(() => { window.stopFrames_ = true; return frames_; })()`, &frames); err != nil {
			t.Fatal(err)
		}
		sort.Float64s(frames)
		return frames
	}
	if err := page.Eval(ctx, record, nil); err != nil {
		t.Fatal(err)
	}
	if err := page.WaitFor(ctx, `window.frames_.length >= 120`); err != nil {
		t.Fatal(err)
	}
	idle := stopRecord()
	time.Sleep(50 * time.Millisecond)
	if err := page.Eval(ctx, record, nil); err != nil {
		t.Fatal(err)
	}
	d := 5 * time.Second
	if s := os.Getenv("PRESENCED_BOARD_LOAD"); s != "" {
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	inUse := map[int]bool{}
	start := time.Now()
	sent := 0
	for time.Since(start) < d {
		// 200 changes a second, spread over the hints.
		k := (sent * 7919) % n
		inUse[k] = !inUse[k]
		state := "NOT_INUSE"
		if inUse[k] {
			state = "INUSE"
		}
		fari.SetDevice(fmt.Sprintf("PJSIP/%d", 2000+k), state)
		sent++
		time.Sleep(time.Until(start.Add(time.Duration(sent) * 5 * time.Millisecond)))
	}
	sentAll := time.Now()
	var want []string
	for k, on := range inUse {
		if on {
			want = append(want, fmt.Sprintf("%q", fmt.Sprint(2000+k)))
		}
	}
	check := fmt.Sprintf(`(() => { const want = new Set([%s]);
		for (const el of document.querySelectorAll('.tile')) {
			const ext = el.querySelector('.ext').textContent;
			if (el.classList.contains('s-InUse') !== want.has(ext)) return false;
		}
		return true; })()`, strings.Join(want, ","))
	if err := page.WaitFor(ctx, check); err != nil {
		t.Fatalf("the board does not show the final state: %v", err)
	}
	caughtUp := time.Since(sentAll)
	frames := stopRecord()
	var applied int
	_ = page.Eval(ctx, `window.presencedBoard.updates`, &applied)
	q := func(fs []float64, f float64) float64 {
		if len(fs) == 0 {
			return 0
		}
		return fs[min(len(fs)-1, int(f*float64(len(fs))))]
	}
	report := fmt.Sprintf("board under load: %d hints, %d changes in %v (%.0f/s); frames %d: p50 %.1f ms, p99 %.1f ms, max %.1f ms "+
		"(idle baseline, %d frames: p50 %.1f ms, p99 %.1f ms, max %.1f ms); board correct %v after the last change; tile updates applied %d\n",
		n, sent, d, float64(sent)/d.Seconds(), len(frames), q(frames, 0.5), q(frames, 0.99), q(frames, 1),
		len(idle), q(idle, 0.5), q(idle, 0.99), q(idle, 1), caughtUp.Round(time.Millisecond), applied)
	t.Log(report)
	if err := os.WriteFile(filepath.Join(artifacts(t), "load.txt"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
}
