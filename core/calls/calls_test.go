package calls

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/transcript"
)

// frame is one AMI frame of a recorded session, with when it came.
type frame struct {
	at     time.Time
	fields Map
}

// recorded reads the frames Asterisk sent in a recorded AMI session
// (testdata/asterisk/transcripts; ami-calls.jsonl: the calls of
// BEHAVIOUR.md 4.15), with when each came.
func recorded(t *testing.T, name string) []frame {
	t.Helper()
	f, err := os.Open(filepath.Join(transcript.Dir(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []frame
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			T    float64 `json:"t"`
			From string  `json:"from"`
			Data string  `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if line.From != "asterisk" {
			continue
		}
		sec, frac := math.Modf(line.T)
		at := time.Unix(int64(sec), int64(frac*1e9))
		for _, raw := range strings.Split(line.Data, "\r\n\r\n") {
			m := Map{}
			for _, l := range strings.Split(raw, "\r\n") {
				if k, v, ok := strings.Cut(l, ": "); ok {
					m[k] = v
				} else if k, ok := strings.CutSuffix(l, ":"); ok {
					m[k] = ""
				}
			}
			if len(m) > 0 {
				out = append(out, frame{at, m})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// view is what a call shows, without times and variables.
func view(cs []Call) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s %s %s %q %q %s/%s\n", c.Channel, c.Device, c.Direction, c.State, c.Number, c.Name, c.UniqueID, c.LinkedID)
	}
	return b.String()
}

// Every event of the recorded calls (an internal call ringing, answered,
// held by the callee, hung up; a call to an unregistered phone; an
// outside caller by Originate; a call to a busy phone; call waiting; a
// blind transfer by Redirect and by the phone), applied in order: at
// each point where the recording listed the channels (CoreShowChannels),
// the live view equals what a resynchronisation from that list gives;
// the calls read as the recording says at those points; and at the end
// no call is left.
func TestRecordedCalls(t *testing.T) {
	frames := recorded(t, "ami-calls.jsonl")
	live := New()
	var list []Fields
	checked := map[string]string{}
	ended := 0
	for _, f := range frames {
		switch f.fields["Event"] {
		case "CoreShowChannel":
			list = append(list, f.fields)
			continue
		case "CoreShowChannelsComplete":
			fresh := New()
			fresh.Resync(list, f.at)
			// CoreShowChannel has no hold flag (BEHAVIOUR.md 4.15: "held:
			// identical to answered"): a tracker that starts from the list
			// sees a held call as established until its next Hold.
			got, want := view(fresh.Calls()), strings.ReplaceAll(view(live.Calls()), " held ", " established ")
			if got != want {
				t.Errorf("%s: resynchronised\n%s\nlive\n%s", f.fields["ActionID"], got, want)
			}
			// A resynchronisation of the live tracker itself changes nothing.
			if ch, en := live.Resync(list, f.at); len(ch) != 0 || len(en) != 0 {
				t.Errorf("%s: resynchronising the live tracker changed %s ended %s", f.fields["ActionID"], view(ch), view(en))
			}
			checked[f.fields["ActionID"]] = view(live.Calls())
			list = nil
			continue
		}
		_, en := live.Event(f.fields, f.at)
		ended += len(en)
	}
	if left := live.Calls(); len(left) != 0 {
		t.Errorf("calls left at the end:\n%s", view(left))
	}
	for id, want := range map[string]string{
		"csc-S1-ringing": "PJSIP/1001-00000000 PJSIP/1001 outgoing dialing \"1002\" \"User 1002\" 1795965956.0/1795965956.0\n" +
			"PJSIP/1002-00000001 PJSIP/1002 incoming ringing \"1001\" \"User 1001\" 1795965956.1/1795965956.0\n",
		"csc-S1-answered": "PJSIP/1001-00000000 PJSIP/1001 outgoing established \"1002\" \"User 1002\" 1795965956.0/1795965956.0\n" +
			"PJSIP/1002-00000001 PJSIP/1002 incoming established \"1001\" \"User 1001\" 1795965956.1/1795965956.0\n",
		"csc-S1-held": "PJSIP/1001-00000000 PJSIP/1001 outgoing established \"1002\" \"User 1002\" 1795965956.0/1795965956.0\n" +
			"PJSIP/1002-00000001 PJSIP/1002 incoming held \"1001\" \"User 1001\" 1795965956.1/1795965956.0\n",
		"csc-S2": "",
		// An outside caller by Originate: the phone rings with the caller
		// ID given to Originate.
		"csc-S3-ringing": "Local/1001@internal-00000000;1 Local/1001@internal outgoing ringing \"0427466347\" \"Jane Black\" 1795965977.3/1795965977.3\n" +
			"Local/1001@internal-00000000;2 Local/1001@internal incoming dialing \"1001\" \"User 1001\" 1795965977.4/1795965977.3\n" +
			"PJSIP/1001-00000003 PJSIP/1001 incoming ringing \"0427466347\" \"Jane Black\" 1795965977.5/1795965977.3\n",
		// Call waiting: 1002 talks to 1001 and rings for Jane Black.
		"csc-S4b-waiting": "Local/1002@internal-00000002;1 Local/1002@internal outgoing ringing \"0427466347\" \"Jane Black\" 1795966009.13/1795966009.13\n" +
			"Local/1002@internal-00000002;2 Local/1002@internal incoming dialing \"1002\" \"User 1002\" 1795966009.14/1795966009.13\n" +
			"PJSIP/1001-00000007 PJSIP/1001 outgoing established \"1002\" \"User 1002\" 1795966005.11/1795966005.11\n" +
			"PJSIP/1002-00000008 PJSIP/1002 incoming established \"1001\" \"User 1001\" 1795966005.12/1795966005.11\n" +
			"PJSIP/1002-00000009 PJSIP/1002 incoming ringing \"0427466347\" \"Jane Black\" 1795966009.15/1795966009.13\n",
		// A Redirect (blind transfer): 1001's channel keeps its ids and
		// now calls 1003 (its connected line follows).
		"csc-S5-after-redirect": "PJSIP/1001-0000000a PJSIP/1001 outgoing established \"1003\" \"User 1003\" 1795966023.16/1795966023.16\n" +
			"PJSIP/1003-0000000c PJSIP/1003 incoming ringing \"1001\" \"User 1001\" 1795966027.18/1795966023.16\n",
		// A transfer by the phone (REFER): 1002 is gone, 1001 talks to 1003.
		"csc-S5b-transferred": "PJSIP/1001-0000000d PJSIP/1001 outgoing established \"1003\" \"User 1003\" 1795966037.19/1795966037.19\n" +
			"PJSIP/1003-0000000f PJSIP/1003 incoming established \"1001\" \"User 1001\" 1795966041.21/1795966037.19\n",
	} {
		got, ok := checked[id]
		if !ok {
			t.Errorf("%s: not in the recording", id)
			continue
		}
		if got != want {
			t.Errorf("%s:\n%s\nwant\n%s", id, got, want)
		}
	}
	if ended == 0 {
		t.Error("no call ended")
	}
}

// Any sequence of events, however garbled, leaves a tracker that a
// Hangup of each of its channels empties, and never panics.
func FuzzTracker(f *testing.F) {
	f.Add("Newchannel", "PJSIP/1001-00000000", "1.0", "1.0", "4", "Hold")
	f.Add("Newchannel", "Local/1001@internal-00000000;2", "1.1", "1.0", "0", "Rename")
	f.Add("Newstate", "-", "", "", "6", "VarSet")
	f.Fuzz(func(t *testing.T, ev, ch, uid, lid, state, ev2 string) {
		tr := New()
		now := time.Unix(0, 0)
		tr.Event(Map{"Event": ev, "Channel": ch, "Uniqueid": uid, "Linkedid": lid, "ChannelState": state, "Exten": ch}, now)
		tr.Event(Map{"Event": ev2, "Channel": ch, "Newname": ch + "x", "Variable": "USR_" + state, "Value": uid, "ChannelState": state}, now)
		tr.Resync([]Fields{Map{"Channel": ch + "y", "Uniqueid": uid, "Linkedid": lid, "ChannelState": state, "Duration": state}}, now)
		for _, c := range tr.Calls() {
			tr.Event(Map{"Event": "Hangup", "Channel": c.Channel}, now)
		}
		if left := tr.Calls(); len(left) != 0 {
			t.Fatalf("left after hanging up every channel: %+v", left)
		}
		_ = duration(state)
	})
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"00:00:04": 4 * time.Second, "01:02:03": time.Hour + 2*time.Minute + 3*time.Second,
		"": 0, "1:2": 0, "aa:00:00": 0, "-1:00:00": 0} {
		if got := duration(in); got != want {
			t.Errorf("duration(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDeviceOf(t *testing.T) {
	for in, want := range map[string]string{"PJSIP/1001-00000003": "PJSIP/1001", "Local/1001@internal-00000000;2": "Local/1001@internal",
		"PJSIP/my-phone-0000000a": "PJSIP/my-phone", "garbage": "garbage", "-x": "-x"} {
		if got := DeviceOf(in); got != want {
			t.Errorf("DeviceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidNumber(t *testing.T) {
	for n, ok := range map[string]bool{"0427466347": true, "+33142000000": true, "*76": true, "#1": true, "1001": true,
		"": false, "+": false, "${SHELL(id)}": false, "1001&PJSIP/evil": false, "10 01": false, "1001\r\nAction: Hangup": false,
		"042-746": false, strings.Repeat("1", MaxNumber): true, strings.Repeat("1", MaxNumber+1): false, "١٢٣": false} {
		if err := ValidNumber(n); (err == nil) != ok {
			t.Errorf("ValidNumber(%q) = %v", n, err)
		}
	}
}

func TestDialable(t *testing.T) {
	for d, ok := range map[string]bool{"PJSIP/1001": true, "SIP/alice": true, "Local/1001@internal": true, "Custom:1001": false,
		"Stasis:presenced-dnd-1001": false, "PJSIP/": false, "1001": false, "PJSIP/1001&PJSIP/1002": false} {
		if Dialable(d) != ok {
			t.Errorf("Dialable(%q) = %v", d, !ok)
		}
	}
}

func FuzzValidNumber(f *testing.F) {
	f.Add("+0427466347")
	f.Add("${SHELL(id)}")
	f.Fuzz(func(t *testing.T, n string) {
		if ValidNumber(n) != nil {
			return
		}
		if strings.ContainsAny(strings.TrimPrefix(n, "+"), "+${}(),&\r\n ") || len(n) > MaxNumber {
			t.Fatalf("%q taken", n)
		}
	})
}
