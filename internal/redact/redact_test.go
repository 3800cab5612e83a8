package redact

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	r := New("s3cret-pass", "tok\"en-with-quote", "ari")
	for _, tc := range []struct{ in, gone, kept string }{
		{`dial ws://127.0.0.1:8088/ari/events?app=p&api_key=ari:ari: refused`, "api_key=ari:ari", "/ari/events"},
		{`Get "http://user:pw@host/ari": EOF`, "user:pw", "host/ari"},
		{`{"err":"wrong s3cret-pass"}`, "s3cret-pass", "wrong"},
		{`{"err":"tok\"en-with-quote"}`, `tok\"en`, "err"},
		{"Action: Login\r\nUsername: u\r\nSecret: hunter22\r\n\r\n", "hunter22", "Username: u"},
		{`{"frame":"Action: Login\r\nSecret: hunter22\r\n"}`, "hunter22", "Login"},
		{"Authorization: Basic YXJpOmFyaQ==\r\n", "YXJpOmFyaQ", "Authorization"},
		{`GET /v1/events?access_token=abcdefgh&all=1`, "abcdefgh", "all=1"},
	} {
		got := r.String(tc.in)
		if strings.Contains(got, tc.gone) || !strings.Contains(got, tc.kept) {
			t.Errorf("%q -> %q: want %q gone and %q kept", tc.in, got, tc.gone, tc.kept)
		}
	}
	var b bytes.Buffer
	n, err := r.Writer(&b).Write([]byte("x s3cret-pass y\n"))
	if err != nil || n != 16 || b.String() != "x "+Mask+" y\n" {
		t.Fatalf("writer: %d %v %q", n, err, b.String())
	}
	r.Set("other-secret")
	if got := r.String("s3cret-pass other-secret"); got != "s3cret-pass "+Mask {
		t.Fatalf("after Set: %q", got)
	}
}

// A hook's log line, as presenced writes one per hook: what the redactor
// costs on the hot path, against writing the line as it is.
var hookLine = []byte(`{"level":"info","component":"hook","transport":"fastagi","command":"presence/set","user":"1001","channel":"PJSIP/1001-00000001","result":"OK","state":"away","took":0.412,"time":"2026-11-29T18:00:00Z","message":"hook"}` + "\n")

func BenchmarkWriter(b *testing.B) {
	w := New("s3cret-password", "another-secret").Writer(io.Discard)
	b.SetBytes(int64(len(hookLine)))
	for b.Loop() {
		_, _ = w.Write(hookLine)
	}
}

func BenchmarkWriterBaseline(b *testing.B) {
	b.SetBytes(int64(len(hookLine)))
	for b.Loop() {
		_, _ = io.Discard.Write(hookLine)
	}
}

// A known secret never comes out, whatever surrounds it.
func FuzzRedact(f *testing.F) {
	f.Add("s3cret-pass", `{"error":"GET http://u:s3cret-pass@h/ari?api_key=x"}`)
	f.Add("tok\"en-1", `line with tok"en-1 and tok\"en-1`)
	f.Fuzz(func(t *testing.T, secret, text string) {
		if len(secret) < minSecret {
			return
		}
		r := New(secret)
		out := r.String(text + secret + text)
		// The mask itself may border text that spells the secret with
		// it: what stands between masks must not hold it.
		for _, piece := range strings.Split(out, Mask) {
			if strings.Contains(piece, secret) {
				t.Fatalf("secret %q in %q", secret, out)
			}
		}
	})
}
