package aritest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The fake answers as BEHAVIOUR.md 4.1 to 4.4 records.
func TestRecordedAnswers(t *testing.T) {
	s, err := New("ari", "ari")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDevice("PJSIP/1001", "UNAVAILABLE")
	tests := []struct {
		method, path string
		auth         bool
		code         int
		body         string
	}{
		{"GET", "/asterisk/info", false, 401, `{"message":"Authentication required"}`},
		{"GET", "/deviceStates/PJSIP%2F1001", true, 200, `{"name":"PJSIP/1001","state":"UNAVAILABLE"}`},
		{"GET", "/deviceStates/PJSIP/1001", true, 404, `{"message":"Resource not found"}`},
		{"GET", "/deviceStates/PJSIP%2F9999", true, 200, `{"name":"PJSIP/9999","state":"INVALID"}`},
		{"GET", "/deviceStates/Custom:nothere", true, 200, `{"name":"Custom:nothere","state":"UNKNOWN"}`},
		{"PUT", "/deviceStates/PJSIP%2F1001?deviceState=BUSY", true, 409, `{"message":"Uncontrolled device specified"}`},
		{"PUT", "/deviceStates/Stasis:foo?deviceState=SOMETHING", true, 500, `{"message":"Unknown device"}`},
		{"PUT", "/deviceStates/Stasis:foo?deviceState=busy", true, 204, ``},
		{"GET", "/deviceStates/Stasis:foo", true, 200, `{"name":"Stasis:foo","state":"BUSY"}`},
		{"DELETE", "/deviceStates/Stasis:foo", true, 204, ``},
		{"GET", "/deviceStates/Stasis:foo", true, 200, `{"name":"Stasis:foo","state":"UNKNOWN"}`},
		{"POST", "/asterisk/variable?variable=PRESENCE_STATE(CustomPresence:1001)&value=away,lunch,back%20soon", true, 204, ``},
		{"GET", "/asterisk/variable?variable=PRESENCE_STATE(CustomPresence:1001,value)", true, 200, `{"value":""}`},
		{"POST", "/applications/nosuchapp/subscription?eventSource=deviceState:PJSIP/1001", true, 404, `{"message":"Application not found"}`},
		{"GET", "/deviceStates/Stasis:foo?colour=red", true, 400, ``},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, s.URL()+tt.path, nil)
		if tt.auth {
			req.SetBasicAuth("ari", "ari")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || (tt.body != "" && strings.TrimSpace(string(b)) != tt.body) {
			t.Errorf("%s %s: %d %s; want %d %s", tt.method, tt.path, resp.StatusCode, b, tt.code, tt.body)
		}
		if tt.code == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="Asterisk REST Interface"` {
			t.Errorf("401 without the realm")
		}
	}
	if v, _ := s.Ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message)"); v != "back soon" {
		t.Errorf("the presence write did not reach Asterisk: %q", v)
	}
}
