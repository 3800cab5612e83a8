package libdefects_test

// These tests pin down why package fastagi does not wrap
// github.com/CyCoreSystems/agi v0.6.4: each feeds the library a recorded
// Asterisk reply and shows it going wrong. If a future version fixes them,
// these tests fail, and the choice can be revisited.

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/CyCoreSystems/agi"

	"github.com/presenced/presenced/asterisk/fastagi/agitest"
)

// lib returns a library session reading the given Asterisk output one byte
// per Read (so its per-call scanner loses nothing by reading ahead) and
// writing the commands to w.
func lib(asterisk string, w io.Writer) *agi.AGI {
	return agi.New(iotest.OneByteReader(strings.NewReader("agi_arg_1:  x \n\n"+asterisk)), w)
}

// A HANGUP read in place of a reply shifts every later reply by one.
func TestLibraryShiftsRepliesAfterHangup(t *testing.T) {
	a := lib("HANGUP\n200 result=1 (bar)\n200 result=0\n", io.Discard)
	if _, err := a.Get("FOO"); err != agi.ErrHangup {
		t.Fatalf("Get = %v", err)
	}
	// NOOP receives GET VARIABLE FOO's reply.
	if r := a.Command("NOOP"); r.Value != "bar" {
		t.Fatalf("the library no longer shifts replies: NOOP got %+v", r)
	}
}

// A reader that hands over several lines at once loses the read-ahead.
func TestLibraryLosesReadAhead(t *testing.T) {
	a := agi.New(strings.NewReader("agi_network: yes\n\n200 result=1 (bar)\n"), io.Discard)
	if v, err := a.Get("FOO"); err == nil && v == "bar" {
		t.Fatal("the library no longer loses bytes read ahead")
	}
}

// 510 and 511 are not typed, and a multi-line 520 leaves its later lines
// to be read as the next replies.
func TestLibraryMisreadsErrorReplies(t *testing.T) {
	a := lib("510 Invalid or unknown command\n", io.Discard)
	if r := a.Command("THIS IS NOT A COMMAND"); r.Status == 510 {
		t.Fatal("the library now parses 510")
	}
	a = lib("520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.\n200 result=1\n", io.Discard)
	_ = a.Command("SET VARIABLE ONLYNAME")
	if r := a.Command("NOOP"); r.Error == nil {
		t.Fatal("the library now reads multi-line 520 replies whole")
	}
}

// SET VARIABLE values go out unquoted: res_agi's parse_args then splits
// them at spaces and eats backslashes and quotes.
func TestLibrarySendsValuesUnquoted(t *testing.T) {
	var sent bytes.Buffer
	a := lib("200 result=1\n", &sent)
	_ = a.Set("PRESENCED_MESSAGE", `said "hi" C:\dir`)
	argv := agitest.ParseArgs(strings.TrimSuffix(sent.String(), "\n"))
	if len(argv) == 4 && argv[3] == `said "hi" C:\dir` {
		t.Fatal("the library now quotes values")
	}
}

// Environment values lose their own spaces.
func TestLibraryTrimsArguments(t *testing.T) {
	a := lib("", io.Discard)
	if a.Variables["agi_arg_1"] == " x " {
		t.Fatal("the library now keeps argument spaces")
	}
}
