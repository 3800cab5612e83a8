package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/testenv"
)

// The board's details: a wrong token is said to be wrong; state symbols
// are drawn (SVG), needing no font; a favicon; a tile shows its context
// when the board has several, and when a timed presence ends.
func TestBoardDetails(t *testing.T) {
	testenv.Long(t)
	b := browser(t)
	bin := buildBinary(t)
	conf := filepath.Join(t.TempDir(), "extensions.conf")
	if err := os.WriteFile(conf, []byte("[internal]\nexten => 1001,hint,PJSIP/1001,CustomPresence:1001\n[sales]\nexten => 2001,hint,PJSIP/2001,CustomPresence:2001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const tok = "board-details-token-0123456789"
	p := startBinary(t, bin, t.TempDir(), "PRESENCED_DIALPLAN="+conf, "PRESENCED_API_TOKENS=write:wall:"+tok)
	resp, err := http.Get("http://" + p.httpAddr + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("favicon: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	page, err := b.Open(ctx, "http://"+p.httpAddr+"/#token=not-the-right-token-000")
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := page.WaitFor(wctx, expr); err != nil {
			var text string
			_ = page.Eval(ctx, "document.body.innerText", &text)
			t.Fatalf("%s: %v\npage:\n%s", what, err, text)
		}
	}
	wait("wrong token said", `!document.getElementById('bad-token').hidden && document.getElementById('login').hidden`)
	if err := page.Navigate(ctx, "http://"+p.httpAddr+"/?again#token="+tok); err != nil {
		t.Fatal(err)
	}
	tile := func(key string) string { return `document.querySelector('.tile[data-key="` + key + `"]')` }
	wait("tiles", `document.querySelectorAll('.tile').length === 2 && document.getElementById('bad-token').hidden`)
	wait("symbols drawn", `[...document.querySelectorAll('.tile .sym')].every(s => s.querySelector('svg') && s.textContent === '')`)
	wait("contexts shown", tile("1001@internal")+`.querySelector('.ctx').textContent === '@internal' && `+tile("2001@sales")+`.querySelector('.ctx').textContent === '@sales'`)
	req, _ := http.NewRequest("PUT", "http://"+p.httpAddr+"/v1/presence/1001", strings.NewReader(`{"state":"away","message":"Lunch","for":"30m"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("set: %v %v", resp, err)
	}
	wait("until shown", tile("1001@internal")+`.querySelector('.pres').textContent.startsWith('Away: Lunch (until ')`)
}
