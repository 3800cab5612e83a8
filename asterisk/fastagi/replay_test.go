package fastagi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/asterisk/fastagi"
	"github.com/presenced/presenced/asterisk/fastagi/agitest"
	"github.com/presenced/presenced/internal/transcript"
)

// outcome is what the handler saw for one command.
type outcome struct {
	line   string
	value  string
	ok     bool
	reply  fastagi.Reply
	err    error
	hungUp bool
}

// startServer runs a FastAGI server on a loopback port for the test.
func startServer(t *testing.T, cfg fastagi.Config) *fastagi.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Log = zerolog.Nop()
	s := fastagi.NewServer(cfg)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// replay plays the Asterisk side of a recorded session against a server
// whose handler sends the recorded commands through the Session API, and
// checks that every byte the server sends is the recorded one. It returns
// the environment and the handler's outcomes.
func replay(t *testing.T, name string) (fastagi.Env, []outcome) {
	t.Helper()
	lines, err := transcript.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, l := range lines {
		if l.From == "server" {
			cmds = append(cmds, strings.TrimSuffix(l.Data, "\n"))
		}
	}
	type result struct {
		env fastagi.Env
		out []outcome
	}
	done := make(chan result, 1)
	srv := startServer(t, fastagi.Config{Handler: fastagi.HandlerFunc(func(ctx context.Context, s *fastagi.Session) {
		var out []outcome
		for _, c := range cmds {
			o := outcome{line: c}
			switch {
			case strings.HasPrefix(c, `SET VARIABLE "`):
				argv := agitest.ParseArgs(c)
				o.err = s.SetVariable(ctx, argv[2], argv[3])
			case strings.HasPrefix(c, "GET VARIABLE ") && !strings.Contains(c, `"`):
				o.value, o.ok, o.err = s.GetVariable(ctx, strings.TrimPrefix(c, "GET VARIABLE "))
			default:
				o.reply, o.err = s.Command(ctx, c)
			}
			o.hungUp = s.HungUp()
			out = append(out, o)
		}
		done <- result{s.Env, out}
	})})

	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i, l := range lines {
		if l.From == "asterisk" {
			if _, err := io.WriteString(conn, l.Data); err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			continue
		}
		got, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: reading the server's command: %v", i, err)
		}
		if got != l.Data {
			t.Fatalf("line %d: server sent %q, recorded %q", i, got, l.Data)
		}
	}
	// The handler has returned: the server closes, as the recorded server did.
	if extra, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("server sent %q after the session, err %v", extra, err)
	}
	r := <-done
	return r.env, r.out
}

func find(t *testing.T, out []outcome, line string, nth int) outcome {
	t.Helper()
	for _, o := range out {
		if o.line == line {
			if nth == 0 {
				return o
			}
			nth--
		}
	}
	t.Fatalf("no command %q", line)
	return outcome{}
}

func TestReplayPresenceWrites(t *testing.T) {
	env, out := replay(t, "presence-writes.jsonl")
	if env.Get("agi_channel") != "Local/7000@internal-00000001;2" || env.Get("agi_accountcode") != "" ||
		len(env.Args) != 1 || env.Args[0] != "arg1" || env.Script() != "test" {
		t.Fatalf("env = %+v", env)
	}
	for _, o := range out {
		if o.err != nil && !strings.Contains(o.line, "NOT A COMMAND") && o.line != "SET VARIABLE ONLYNAME" {
			t.Errorf("%s: %v", o.line, o.err)
		}
	}
	checks := []struct {
		line  string
		nth   int
		value string
		ok    bool
	}{
		{"GET VARIABLE FOO", 0, "bar", true},
		{"GET VARIABLE NOSUCHVAR", 0, "", false},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1001,value)", 0, "away", true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1001,message)", 0, "back soon", true},
		{"GET VARIABLE DB(CustomPresence/1002)", 0, "", true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1002,value)", 0, "not_set", true},
		{"GET VARIABLE DB(CustomPresence/1002)", 1, `away,"lunch",said "hi" C:\dir (back at 3)`, true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1002,subtype)", 0, `"lunch"`, true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1002,message)", 0, `said "hi" C:\dir (back at 3)`, true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1002,message)", 1, "\xb1\xe7\xbf\xca\x8b", true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1002,message,e)", 0, "see/yos=", true},
		{"GET VARIABLE PRESENCE_STATE(CustomPresence:1002,message)", 2, `said "hi", C:\dir, back at 3 (maybe)`, true},
		{"GET VARIABLE FOO", 1, "bar", true},
	}
	for _, c := range checks {
		o := find(t, out, c.line, c.nth)
		if o.value != c.value || o.ok != c.ok {
			t.Errorf("%s #%d = %q, %v; want %q, %v", c.line, c.nth, o.value, o.ok, c.value, c.ok)
		}
	}
	if o := find(t, out, `GET FULL VARIABLE "${FOO}-${EXTEN}"`, 0); o.reply.Data != "bar-7000" || o.reply.Result != "1" {
		t.Errorf("GET FULL VARIABLE = %+v", o.reply)
	}
	if o := find(t, out, "CHANNEL STATUS", 0); o.reply.Result != "6" {
		t.Errorf("CHANNEL STATUS = %+v", o.reply)
	}
	if o := find(t, out, "THIS IS NOT A COMMAND", 0); !errors.Is(o.err, fastagi.ErrInvalidCommand) || o.reply.Code != 510 {
		t.Errorf("unknown command: %+v", o)
	}
	var usage *fastagi.UsageError
	if o := find(t, out, "SET VARIABLE ONLYNAME", 0); !errors.As(o.err, &usage) || !strings.Contains(usage.Usage, "Sets a variable to the current channel.") {
		t.Errorf("520: %+v", o)
	}
	// HANGUP arrived unsolicited before GET VARIABLE FOO's reply.
	if find(t, out, "GET VARIABLE FOO", 0).hungUp || !find(t, out, "GET VARIABLE FOO", 1).hungUp {
		t.Error("HANGUP not noticed at the right command")
	}
	if o := out[len(out)-1]; o.line != "NOOP" || o.reply.Result != "0" || !o.hungUp {
		t.Errorf("last command %+v", o)
	}
}

func TestReplayHangupDuringCommand(t *testing.T) {
	_, out := replay(t, "hangup-during-command.jsonl")
	want := []struct {
		line, result string
		hungUp       bool
	}{
		{"ANSWER", "0", false},
		{"EXEC Wait 10", "-1", false},
		{"GET VARIABLE AGISTATUS", "", true},
		{"NOOP", "0", true},
	}
	if len(out) != len(want) {
		t.Fatalf("%d outcomes", len(out))
	}
	for i, w := range want {
		o := out[i]
		if o.line != w.line || o.err != nil || o.reply.Result != w.result || o.hungUp != w.hungUp {
			t.Errorf("%d: %+v, want %+v", i, o, w)
		}
	}
	if out[2].ok {
		t.Error("GET VARIABLE AGISTATUS read as set: the HANGUP line was taken for its reply")
	}
}

func TestReplayPJSIPCaller(t *testing.T) {
	env, out := replay(t, "pjsip-caller.jsonl")
	if env.Get("agi_callerid") != "1001" || env.Get("agi_calleridname") != "User 1001" || env.Get("agi_type") != "PJSIP" {
		t.Fatalf("env = %+v", env.Vars)
	}
	if o := out[0]; o.value != "Ring" || !o.ok {
		t.Fatalf("CHANNEL(state) = %+v", o)
	}
}
