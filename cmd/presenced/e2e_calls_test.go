package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presenced/presenced/asterisk/ami/amitest"
	"github.com/presenced/presenced/internal/testenv"
	"github.com/presenced/presenced/internal/transcript"
)

// recordedFrames returns the event frames a real Asterisk sent in the
// recorded calls (testdata/asterisk/transcripts/ami-calls.jsonl,
// BEHAVIOUR.md 4.15)
// between the notes starting from and to, of the events keep selects.
func recordedFrames(t *testing.T, from, to string, keep map[string]bool) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(transcript.Dir(), "ami-calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out []string
	in := false
	for sc.Scan() {
		var line struct{ From, Data, Event string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line.Event, from):
			in = true
		case strings.HasPrefix(line.Event, to) && in:
			return out
		case in && line.From == "asterisk":
			for _, fr := range strings.SplitAfter(line.Data, "\r\n\r\n") {
				ev, _, _ := strings.Cut(strings.TrimPrefix(fr, "Event: "), "\r\n")
				if strings.HasPrefix(fr, "Event: ") && keep[ev] {
					out = append(out, fr)
				}
			}
		}
	}
	t.Fatalf("no %q ... %q in the recording", from, to)
	return nil
}

// callsOf reads GET /v1/calls[?user=] as "channel direction state number name" lines.
func callsOf(t *testing.T, p *proc, query string) string {
	t.Helper()
	code, body := p.get(t, "/v1/calls"+query)
	if code != 200 {
		t.Fatalf("GET /v1/calls%s: %d %s", query, code, body)
	}
	var out struct {
		Calls []struct {
			Channel, Direction, State, Number, Name string
			Hints                                   []string
		}
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range out.Calls {
		lines = append(lines, strings.Join([]string{c.Channel, c.Direction, c.State, c.Number, c.Name, strings.Join(c.Hints, ",")}, " "))
	}
	return strings.Join(lines, "\n")
}

// The recorded internal call (BEHAVIOUR.md 4.15 S1), its events sent by
// the fake AMI as Asterisk sent them: GET /v1/calls follows it ringing,
// answered, held by the callee; the AMI connection dropped mid-call and
// the call hung up meanwhile: after the reconnect the call is gone (the
// list of channels is read again); an Asterisk restart mid-call ends it
// too. Unknown query parameters and bad users are refused.
func TestBinaryCalls(t *testing.T) {
	bin := buildBinary(t)
	_, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"},
		amitest.Hint{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", StatusText: "Idle"})
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv)...)
	defer p.stop(t)
	waitCalls := func(query, want string) {
		t.Helper()
		var got string
		testenv.Eventually(t, "GET /v1/calls"+query+":\n"+want, func() bool { got = callsOf(t, p, query); return got == want },
			func() string { return got })
	}
	waitCalls("", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := watchSSE(t, ctx, p)
	// sawCalls reads the watcher's events until a "calls" event whose
	// data holds every part.
	sawCalls := func(what string, parts ...string) {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.event != "calls" {
					continue
				}
				all := true
				for _, part := range parts {
					all = all && strings.Contains(ev.data, part)
				}
				if all {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no calls event with %q", what, parts)
			}
		}
	}
	keep := map[string]bool{"Newchannel": true, "Newstate": true, "NewConnectedLine": true, "NewCallerid": true, "Newexten": true,
		"Hold": true, "Unhold": true, "Hangup": true, "VarSet": true, "DialBegin": true, "DialEnd": true, "BridgeEnter": true}
	ring := recordedFrames(t, "S1: 1001 (pjsua) calls 1002", "CoreShowChannels (S1-ringing)", keep)
	answer := recordedFrames(t, "CoreShowChannels (S1-ringing)", "CoreShowChannels (S1-answered)", keep)
	hold := recordedFrames(t, "S1: 1002 (pjsua) presses H", "CoreShowChannels (S1-held)", keep)
	unhold := recordedFrames(t, "S1: 1002 presses v", "S1: 1001 hangs up", keep)
	hangup := recordedFrames(t, "S1: 1001 hangs up", "S2:", keep)

	srv.Call(ring...)
	waitCalls("?user=1002", "PJSIP/1002-00000001 incoming ringing 1001 User 1001 1002@internal")
	sawCalls("1002 rings", `"device":"PJSIP/1002"`, `"direction":"incoming","state":"ringing","number":"1001","name":"User 1001"`)
	waitCalls("", "PJSIP/1001-00000000 outgoing dialing 1002 User 1002 1001@internal\n"+
		"PJSIP/1002-00000001 incoming ringing 1001 User 1001 1002@internal")
	srv.Call(answer...)
	srv.Call(hold...)
	waitCalls("", "PJSIP/1001-00000000 outgoing established 1002 User 1002 1001@internal\n"+
		"PJSIP/1002-00000001 incoming held 1001 User 1001 1002@internal")
	sawCalls("1002 holds", `"device":"PJSIP/1002"`, `"state":"held"`)
	srv.Call(unhold...)
	waitCalls("?user=1002", "PJSIP/1002-00000001 incoming established 1001 User 1001 1002@internal")

	// Dropped mid-call; the call ends meanwhile.
	srv.Drop()
	srv.CallQuietly(hangup...)
	waitCalls("", "")
	sawCalls("1001's call ended", `{"device":"PJSIP/1001","calls":[]}`)

	// A restart mid-call ends the call.
	srv.Call(ring...)
	srv.Call(answer...)
	waitCalls("?user=1001", "PJSIP/1001-00000000 outgoing established 1002 User 1002 1001@internal")
	srv.Restart()
	srv.LoadDialplan()
	srv.Booted()
	waitCalls("", "")

	for _, q := range []string{"?usr=1001", "?user=" + "%24%7BSHELL(id)%7D", "?user=1001%261002"} {
		if code, body := p.get(t, "/v1/calls"+q); code != 400 {
			t.Errorf("GET /v1/calls%s: %d %s", q, code, body)
		}
	}
}

// post sends a JSON body and returns the status and the body.
func (p *proc) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	return p.do(t, "POST", path, body, "")
}

// Click to dial: POST /v1/calls rings the user's phone with an AMI
// Originate into PRESENCED_DIAL_CONTEXT (asynchronous, no caller ID), the
// ringing phone shows in GET /v1/calls, and POST /v1/calls/hangup ends
// it. Hostile numbers, unknown users and channels, and fields Asterisk
// refuses never reach AMI, or are answered with Asterisk's refusal.
func TestBinaryClickToDial(t *testing.T) {
	bin := buildBinary(t)
	_, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"},
		amitest.Hint{Exten: "1003", Context: "internal", App: "Custom:1003", StatusText: "Idle"})
	srv.SetDialable("internal", "0427466347")
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, "PRESENCED_DIAL_CONTEXT=internal")...)
	defer p.stop(t)
	testenv.Eventually(t, "hint 1001 from AMI", func() bool { code, _ := p.get(t, "/v1/hints/1001@internal"); return code == 200 })
	code, body := p.post(t, "/v1/calls", `{"user":"1001","number":"0427466347"}`)
	if code != 202 || !strings.Contains(body, `"device":"PJSIP/1001"`) {
		t.Fatalf("dial: %d %s", code, body)
	}
	o := srv.Originates()
	if len(o) != 1 || o[0]["channel"] != "PJSIP/1001" || o[0]["context"] != "internal" || o[0]["exten"] != "0427466347" ||
		o[0]["priority"] != "1" || o[0]["async"] != "true" || o[0]["callerid"] != "" {
		t.Fatalf("the Originate: %v", o)
	}
	var got string
	testenv.Eventually(t, "the phone ringing", func() bool {
		got = callsOf(t, p, "?user=1001")
		return strings.HasSuffix(got, " outgoing ringing   1001@internal")
	}, func() string { return got })
	ringing, _, _ := strings.Cut(got, " ")
	if code, body := p.post(t, "/v1/calls/hangup", `{"channel":"`+ringing+`"}`); code != 202 {
		t.Fatalf("hangup: %d %s", code, body)
	}
	testenv.Eventually(t, "the call ended", func() bool { return callsOf(t, p, "") == "" }, func() string { return callsOf(t, p, "") })

	hangups := func() int {
		n := 0
		for _, a := range srv.Actions() {
			if strings.EqualFold(a, "Hangup") {
				n++
			}
		}
		return n
	}
	before := hangups()
	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/v1/calls", `{"user":"1001","number":"${SHELL(id)}"}`, 400},
		{"/v1/calls", `{"user":"1001","number":"1001&PJSIP/evil"}`, 400},
		{"/v1/calls", `{"user":"1001","number":"1\r\nAction: Hangup"}`, 400},
		{"/v1/calls", `{"user":"1001","number":""}`, 400},
		{"/v1/calls", `{"user":"1001","number":"*78"}`, 403}, // a feature code: the dial policy
		{"/v1/calls", `{"user":"1001","number":"*721001"}`, 403},
		{"/v1/calls", `{"user":"10 01","number":"0427466347"}`, 400},
		{"/v1/calls", `{"user":"1001","number":"0427466347","callerid":"x"}`, 400},
		{"/v1/calls", `{"user":"1999","number":"0427466347"}`, 404},
		{"/v1/calls", `{"user":"1003","number":"0427466347"}`, 404}, // a Custom: device cannot ring
		{"/v1/calls/hangup", `{"channel":"/.*/"}`, 404},
		{"/v1/calls/hangup", `{"channel":"PJSIP/1001-00000000"}`, 404},
	} {
		if code, body := p.post(t, c.path, c.body); code != c.code {
			t.Errorf("POST %s %s: %d %s, want %d", c.path, c.body, code, body, c.code)
		}
	}
	if n := len(srv.Originates()); n != 1 {
		t.Errorf("%d Originates reached AMI, want the one", n)
	}
	if hangups() != before {
		t.Error("a refused hang-up reached AMI")
	}
	// An extension Asterisk does not have: its refusal, as Asterisk says it.
	if code, body := p.post(t, "/v1/calls", `{"user":"1001","number":"0999"}`); code != 502 || !strings.Contains(body, "Extension does not exist.") {
		t.Errorf("dial an extension Asterisk lacks: %d %s", code, body)
	}
}

// Who may see the other party is the token's: a "states" token (a wall
// board's) sees the recorded call ringing without number, name or USR_*
// variables in GET /v1/calls, on SSE and on WebSocket, and /v1/whoami says
// "states"; a read token sees them. A watcher of one hint gets the calls
// on its phone only.
func TestBinaryCallsParties(t *testing.T) {
	bin := buildBinary(t)
	_, srv := fakeAMI(t)
	srv.SetHints(amitest.Hint{Exten: "1001", Context: "internal", App: "PJSIP/1001,CustomPresence:1001", StatusText: "Idle"},
		amitest.Hint{Exten: "1002", Context: "internal", App: "PJSIP/1002,CustomPresence:1002", StatusText: "Idle"})
	const statesTok, readTok = "wallboard-token-0123456789", "crm-token-0123456789abcdef"
	p := startBinary(t, bin, t.TempDir(), amiEnv(srv, "PRESENCED_API_TOKENS=states:wall:"+statesTok+",read:crm:"+readTok)...)
	defer p.stop(t)
	get := func(path, tok string) (int, string) {
		t.Helper()
		return p.do(t, "GET", path, "", tok)
	}
	if code, body := get("/v1/whoami", statesTok); code != 200 || body != `{"scope":"states"}`+"\n" {
		t.Fatalf("whoami: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testenv.Eventually(t, "hints from AMI", func() bool { code, _ := get("/v1/hints/1002@internal", readTok); return code == 200 })
	// A watcher of 1002's hint only: the calls on its phone, none of 1001's.
	// It follows the devices the hint has when it subscribes, as the hub
	// knows them (a moment after the hint table): subscribed again until
	// its snapshot has the hint.
	var ofHint <-chan sseEvent
	testenv.Eventually(t, "the hub having 1002's hint", func() bool {
		sub, subCancel := context.WithCancel(ctx)
		c := watchSSEPath(t, sub, p, "/v1/events?hints=1002@internal&access_token="+readTok)
		if ev := <-c; ev.event == "snapshot" && strings.Contains(ev.data, `"exten":"1002"`) {
			ofHint = c
			t.Cleanup(subCancel)
			return true
		}
		subCancel()
		return false
	})
	hidden := watchSSEPath(t, ctx, p, "/v1/events?all=1&access_token="+statesTok)
	shown := watchSSEPath(t, ctx, p, "/v1/events?all=1&access_token="+readTok)
	ws, _, err := websocket.Dial(ctx, "ws://"+p.httpAddr+"/v1/ws?access_token="+statesTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","all":true}`)); err != nil {
		t.Fatal(err)
	}
	// Subscribed once its snapshot is here: the call below comes after.
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"type":"snapshot"`) {
			break
		}
	}
	keep := map[string]bool{"Newchannel": true, "Newstate": true, "NewConnectedLine": true, "NewCallerid": true, "Hangup": true, "VarSet": true}
	srv.Call(recordedFrames(t, "S1: 1001 (pjsua) calls 1002", "CoreShowChannels (S1-ringing)", keep)...)
	// The read token's watcher gets the party once Asterisk names it
	// (the first ringing event may come before the connected line).
	for seen := false; !seen; {
		select {
		case ev := <-shown:
			seen = ev.event == "calls" && strings.Contains(ev.data, `"device":"PJSIP/1002"`) && strings.Contains(ev.data, `"number":"1001","name":"User 1001"`)
		case <-time.After(10 * time.Second):
			t.Fatal("the read token's watcher never saw the party")
		}
	}
	for seen := false; !seen; {
		select {
		case ev := <-ofHint:
			if ev.event == "calls" && !strings.Contains(ev.data, `"device":"PJSIP/1002"`) {
				t.Fatalf("the watcher of 1002@internal got %s", ev.data)
			}
			seen = ev.event == "calls" && strings.Contains(ev.data, `"number":"1001"`)
		case <-time.After(10 * time.Second):
			t.Fatal("the watcher of 1002@internal never saw its call")
		}
	}
	// The states token's watcher got the same changes, none with the party.
	ringingSeen := false
	for drained := false; !drained; {
		select {
		case ev := <-hidden:
			if ev.event != "calls" {
				continue
			}
			if strings.Contains(ev.data, `"number"`) || strings.Contains(ev.data, `"name"`) || strings.Contains(ev.data, `"vars"`) {
				t.Fatalf("states token's event shows the party: %s", ev.data)
			}
			ringingSeen = ringingSeen || strings.Contains(ev.data, `"state":"ringing"`)
		case <-time.After(time.Second):
			drained = true
		}
	}
	if !ringingSeen {
		t.Fatal("the states token's watcher saw no ringing call")
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if strings.Contains(s, `"type":"calls"`) && (strings.Contains(s, `"number"`) || strings.Contains(s, "User 1001")) {
			t.Fatalf("states token's WebSocket shows the party: %s", s)
		}
		if strings.Contains(s, `"type":"calls"`) && strings.Contains(s, `"state":"ringing"`) && strings.Contains(s, "PJSIP/1002") {
			break
		}
	}
	var shownList string
	testenv.Eventually(t, "the read token's list showing the caller", func() bool {
		_, shownList = get("/v1/calls?user=1002", readTok)
		return strings.Contains(shownList, `"number":"1001"`)
	}, func() string { return shownList })
	if _, hiddenList := get("/v1/calls?user=1002", statesTok); !strings.Contains(hiddenList, `"state":"ringing"`) || strings.Contains(hiddenList, `"number"`) || strings.Contains(hiddenList, "User 1001") {
		t.Fatalf("states token's list: %s", hiddenList)
	}
}
