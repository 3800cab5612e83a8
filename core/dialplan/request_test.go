package dialplan

import (
	"strings"
	"testing"

	"github.com/presenced/presenced/core/presence"
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
