package dialplan

import (
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
)

func TestParseRequestAndBind(t *testing.T) {
	params := []string{"user", "state", "subtype", "message", "for"}
	tests := []struct {
		script string
		args   []string
		want   map[string]string
		err    presence.Code
	}{
		{script: "presence/set", args: []string{"1001", "away", "", "Lunch"}, want: map[string]string{"user": "1001", "state": "away", "subtype": "", "message": "Lunch"}},
		{script: "/presence/set?state=away&message=Out%20to%20lunch%2C%20back%20at%202", want: map[string]string{"state": "away", "message": "Out to lunch, back at 2"}},
		{script: "presence/set?message=a+b", args: []string{"1001", "dnd"}, want: map[string]string{"user": "1001", "state": "dnd", "message": "a b"}},
		{script: "presence/set?state=away", args: []string{"1001", "away"}, want: map[string]string{"user": "1001", "state": "away"}},
		{script: "presence/set?state=dnd", args: []string{"1001", "away"}, err: presence.CodeInvalidArgument},
		{script: "presence/set?colour=red", err: presence.CodeInvalidArgument},
		{script: "presence/set?state=a&state=b", err: presence.CodeInvalidArgument},
		{script: "presence/set?state=%zz", err: presence.CodeInvalidArgument},
		{script: "presence/set", args: []string{"1", "2", "3", "4", "5", "6"}, err: presence.CodeInvalidArgument},
	}
	for _, tt := range tests {
		req, err := ParseRequest(tt.script, tt.args, "unknown")
		if err == nil {
			if req.Command != "presence/set" || req.Caller != "" {
				t.Errorf("%q: request %+v", tt.script, req)
			}
			var p map[string]string
			p, err = bind(req.Command, params, req)
			if err == nil {
				for k, v := range tt.want {
					if p[k] != v {
						t.Errorf("%q %q: %s = %q, want %q", tt.script, tt.args, k, p[k], v)
					}
				}
			}
		}
		if presence.ErrorCode(err) != tt.err {
			t.Errorf("%q %q: err %v, want %q", tt.script, tt.args, err, tt.err)
		}
	}
}

func TestParseFor(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90", 90 * time.Second, true}, {"45s", 45 * time.Second, true}, {"30m", 30 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true}, {"744h", 744 * time.Hour, true},
		{"0", 0, false}, {"-5m", 0, false}, {"745h", 0, false}, {"soon", 0, false}, {"1d", 0, false}, {"500ms", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseFor(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFor(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestParseHintRef(t *testing.T) {
	for in, want := range map[string][2]string{"1001": {"1001", "default"}, "1001@internal": {"1001", "internal"}, "*76@feature-codes": {"*76", "feature-codes"}} {
		e, c, err := ParseHintRef(in)
		if err != nil || e != want[0] || c != want[1] {
			t.Errorf("ParseHintRef(%q) = %q, %q, %v", in, e, c, err)
		}
	}
	for _, in := range []string{"", "@internal", "1001@", "10 01", "1001@a,b", "1001)", strings.Repeat("1", 81)} {
		if _, _, err := ParseHintRef(in); err == nil {
			t.Errorf("ParseHintRef(%q) accepted", in)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add("presence/set?state=away&message=x%2Cy", "1001", "away")
	f.Add("dnd/toggle", "", "")
	f.Add("hint/get?exten=1001@internal", "", "")
	f.Fuzz(func(t *testing.T, script, a1, a2 string) {
		req, err := ParseRequest(script, []string{a1, a2}, "1001")
		if err != nil {
			if presence.ErrorCode(err) == presence.CodeInternal {
				t.Fatalf("internal error for bad input: %v", err)
			}
			return
		}
		hk, ok := hookTable[req.Command]
		if !ok {
			return
		}
		if p, err := bind(req.Command, hk.params, req); err == nil {
			for name := range p {
				if !strings.Contains(strings.Join(hk.params, ","), name) {
					t.Fatalf("bound unknown parameter %q", name)
				}
			}
		}
	})
}
