package fastagi

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/presenced/presenced/asterisk/fastagi/agitest"
)

// The environment of AGI(agi://127.0.0.1:4573/early?k=v,x,y z,"q",) as
// BEHAVIOUR.md 4.7 records it: the query stays in the script, dialplan
// quotes are gone, and the trailing empty argument is still sent.
const earlyEnv = "agi_network: yes\n" +
	"agi_network_script: early?k=v\n" +
	"agi_request: agi://127.0.0.1:4573/early?k=v\n" +
	"agi_channel: Local/7002@tests-00000002;2\n" +
	"agi_callerid: unknown\n" +
	"agi_accountcode: \n" +
	"agi_arg_1: x\n" +
	"agi_arg_2: y z\n" +
	"agi_arg_3: q\n" +
	"agi_arg_4: \n" +
	"\n"

func TestReadEnv(t *testing.T) {
	env, err := ReadEnv(bufio.NewReader(strings.NewReader(earlyEnv + "200 result=0\n")))
	if err != nil {
		t.Fatal(err)
	}
	if env.Script() != "early?k=v" || env.Get("agi_accountcode") != "" || env.Get("agi_callerid") != "unknown" {
		t.Fatalf("env = %+v", env.Vars)
	}
	want := []string{"x", "y z", "q", ""}
	if strings.Join(env.Args, "|") != strings.Join(want, "|") || len(env.Args) != 4 {
		t.Fatalf("args = %q, want %q", env.Args, want)
	}
	// An argument with a line break goes on over lines without a name.
	env, err = ReadEnv(bufio.NewReader(strings.NewReader("agi_request: x\nagi_arg_1: a\nagi_arg_2: b\nc\nagi_arg_3: d\n\n")))
	if err != nil || env.LineBreakArg != 2 || len(env.Args) != 3 || env.Args[1] != "b\nc" {
		t.Fatalf("line break: %q %d %v", env.Args, env.LineBreakArg, err)
	}
	// Argument's own spaces are kept (the library this replaces trims them).
	env, err = ReadEnv(bufio.NewReader(strings.NewReader("agi_arg_1:  two leading \n\n")))
	if err != nil || env.Args[0] != " two leading " {
		t.Fatalf("args = %q, %v", env.Args, err)
	}
}

func TestReadEnvErrors(t *testing.T) {
	for _, in := range []string{
		"",                               // EOF before anything
		"agi_network: yes\n",             // EOF before the empty line
		"no colon here\n\n",              // malformed
		"foo: bar\n\n",                   // not an agi_ variable
		"agi_arg_2: x\n\n",               // arguments out of order
		"agi_arg_1: x\nagi_arg_1: y\n\n", // duplicate
		"agi_x: " + strings.Repeat("a", MaxLine) + "\n\n", // too long
		strings.Repeat("agi_a: b\n", maxEnvLines+1) + "\n",
	} {
		if _, err := ReadEnv(bufio.NewReaderSize(strings.NewReader(in), MaxLine)); err == nil {
			t.Errorf("ReadEnv(%.40q) succeeded", in)
		}
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in      string
		want    Reply
		hangups int
		err     error
		rest    string // what must remain unread
	}{
		{in: "200 result=1\n", want: Reply{Code: 200, Result: "1"}},
		{in: "200 result=0\n", want: Reply{Code: 200, Result: "0"}},
		{in: "200 result=-1\n", want: Reply{Code: 200, Result: "-1"}},
		{in: "200 result=1 (bar)\n", want: Reply{Code: 200, Result: "1", Data: "bar"}},
		{in: "200 result=1 ()\n", want: Reply{Code: 200, Result: "1", Data: ""}},
		{in: "200 result=1 (said \"hi\" C:\\dir (back at 3))\n", want: Reply{Code: 200, Result: "1", Data: `said "hi" C:\dir (back at 3)`}},
		{in: "200 result=0 endpos=12345\n", want: Reply{Code: 200, Result: "0", Extra: "endpos=12345"}},
		{in: "200 result=1 (timeout) endpos=80\n", want: Reply{Code: 200, Result: "1", Data: "timeout", Extra: "endpos=80"}},
		{in: "HANGUP\n200 result=0\n200 result=1 (next)\n", want: Reply{Code: 200, Result: "0"}, hangups: 1, rest: "200 result=1 (next)\n"},
		{in: "HANGUP\nHANGUP\n200 result=0\n", want: Reply{Code: 200, Result: "0"}, hangups: 2},
		{in: "510 Invalid or unknown command\n", want: Reply{Code: 510, Text: "Invalid or unknown command"}, err: ErrInvalidCommand},
		{in: "511 Command Not Permitted on a dead channel or intercept routine\n", want: Reply{Code: 511, Text: "Command Not Permitted on a dead channel or intercept routine"}, err: ErrDeadChannel},
		{in: "520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.\n200 result=1\n",
			want: Reply{Code: 520, Text: "Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\nEnd of proper usage."}, rest: "200 result=1\n"},
		{in: "520 Invalid command syntax.\n", want: Reply{Code: 520, Text: "Invalid command syntax."}},
	}
	for _, tt := range tests {
		br := bufio.NewReader(strings.NewReader(tt.in))
		hangups := 0
		got, err := readReply(br, &hangups)
		if tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("%q: err %v, want %v", tt.in, err, tt.err)
		}
		var usage *UsageError
		if tt.want.Code == 520 && !errors.As(err, &usage) {
			t.Errorf("%q: err %v, want a UsageError", tt.in, err)
		}
		if tt.err == nil && tt.want.Code == 200 && err != nil {
			t.Errorf("%q: %v", tt.in, err)
		}
		if got != tt.want || hangups != tt.hangups {
			t.Errorf("%q: %+v (%d hangups), want %+v (%d)", tt.in, got, hangups, tt.want, tt.hangups)
		}
		if rest, _ := io.ReadAll(br); string(rest) != tt.rest {
			t.Errorf("%q: left %q unread, want %q", tt.in, rest, tt.rest)
		}
	}
}

func TestReadReplyErrors(t *testing.T) {
	for _, in := range []string{"", "HANGUP\n", "20\n", "abc result=1\n", "200 foo\n", "200 result=1", "520-usage\nno end\n", "099 x\n"} {
		hangups := 0
		r, err := readReply(bufio.NewReader(strings.NewReader(in)), &hangups)
		if err == nil {
			t.Errorf("readReply(%q) = %+v, want an error", in, r)
		}
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "bar", "two words", `say "hi"`, `C:\dir\`, `\"`, "tab\there", "${X}", "a,b", `"`, `\`} {
		argv := agitest.ParseArgs("SET VARIABLE " + Quote("NAME") + " " + Quote(s))
		if len(argv) != 4 || argv[3] != s || argv[2] != "NAME" {
			t.Errorf("Quote(%q) parsed back as %q", s, argv)
		}
	}
	if got := Quote(`said "hi", C:\dir`); got != `"said \"hi\", C:\\dir"` {
		t.Errorf("Quote = %s", got)
	}
}

func FuzzReadEnv(f *testing.F) {
	f.Add(earlyEnv)
	f.Add("agi_arg_1: x\n\n")
	f.Add("agi_network: yes\nHANGUP\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		env, err := ReadEnv(bufio.NewReaderSize(strings.NewReader(in), MaxLine))
		if err != nil {
			return
		}
		for i, a := range env.Args {
			if env.Vars["agi_arg_"+strconv.Itoa(i+1)] != a {
				t.Fatalf("arg %d mismatch", i+1)
			}
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"200 result=1 (bar)\n", "HANGUP\n200 result=0\n", "520-a\nb\n520 c\n", "510 x\n", "200 result=1 ((()\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		hangups := 0
		r, err := readReply(bufio.NewReaderSize(strings.NewReader(in), MaxLine), &hangups)
		if err == nil && r.Code != 200 {
			t.Fatalf("non-200 reply %+v without error", r)
		}
		if strings.Count(in, "HANGUP\n") < hangups {
			t.Fatalf("%d hangups counted", hangups)
		}
	})
}

// Whatever a user types (without line breaks) reaches Asterisk unchanged.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", `a "b" \c`, "x y", `\\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidArg(s) {
			return
		}
		argv := agitest.ParseArgs("SET VARIABLE X " + Quote(s))
		if len(argv) != 4 || argv[3] != s {
			t.Fatalf("Quote(%q) parsed back as %q", s, argv)
		}
	})
}
