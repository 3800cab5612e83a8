package calls

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/actor"
	"github.com/presenced/presenced/internal/ratelimit"
)

func TestPolicy(t *testing.T) {
	for _, tt := range []struct {
		allow, deny string
		number      string
		want        error // nil, ErrNotAllowed or ErrNumber
	}{
		// The default: digits, optional leading +, no feature codes.
		{"", "", "1002", nil},
		{"", "", "0", nil},
		{"", "", "+33142685300", nil},
		{"", "", "*721001", ErrNotAllowed},
		{"", "", "*78", ErrNotAllowed},
		{"", "", "1001#", ErrNotAllowed},
		{"", "", "#", ErrNotAllowed},
		{"", "", "+", ErrNumber},
		{"", "", "", ErrNumber},
		{"", "", "1001&PJSIP/evil", ErrNumber},
		{"", "", "${SHELL(id)}", ErrNumber},
		{"", "", "1+2", ErrNumber},
		{"", "", strings.Repeat("1", 33), ErrNumber},
		// Deny narrows the default: premium and international prefixes.
		{"", "_089X.,_00.", "0891234567", ErrNotAllowed},
		{"", "_089X.,_00.", "0041441234567", ErrNotAllowed},
		{"", "_089X.,_00.", "0142685300", nil},
		{"", "_+!", "+33142685300", ErrNotAllowed},
		{"", "_+!", "1002", nil},
		// Allow replaces the default: only these.
		{"_1XXX", "", "1002", nil},
		{"_1XXX", "", "10020", ErrNotAllowed},
		{"_1XXX", "", "+1002", ErrNotAllowed},
		{"_1XXX,_0[1-5]XXXXXXXX", "", "0142685300", nil},
		{"_1XXX,_0[1-5]XXXXXXXX", "", "0642685300", ErrNotAllowed},
		// An admin may allow one feature code on purpose, exactly.
		{"_X!,*97", "", "*97", nil},
		{"_X!,*97", "", "*971", ErrNotAllowed},
		// Deny wins over allow.
		{"_X!", "1001", "1001", ErrNotAllowed},
		// Z, N, "-" as a separator, lower case, "!" for zero or more.
		{"_1-800-NXX-XXXX", "", "18002345678", nil},
		{"_1-800-NXX-XXXX", "", "18001345678", ErrNotAllowed},
		{"_zx", "", "10", nil},
		{"_zx", "", "01", ErrNotAllowed},
		{"_12!", "", "12", nil},
		{"_12.", "", "12", ErrNotAllowed},
		{"_12.", "", "123", nil},
	} {
		p, err := ParsePolicy(tt.allow, tt.deny)
		if err != nil {
			t.Fatalf("ParsePolicy(%q, %q): %v", tt.allow, tt.deny, err)
		}
		err = p.Check(tt.number)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("allow %q deny %q: Check(%q) = %v, want %v", tt.allow, tt.deny, tt.number, err, tt.want)
		}
	}
	if err := (*Policy)(nil).Check("*78"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("a nil policy is the default, but allowed *78 (%v)", err)
	}
}

func TestParsePolicyRefuses(t *testing.T) {
	for _, list := range []string{"_", "_1.2", "_1!2", "_[1-", "_[]", "_[a]", "_[9-1]", "_1A", "12a", "1 2", "_${X}", "_1&2", "+"} {
		if _, err := ParsePolicy(list, ""); err == nil {
			t.Errorf("allow %q was taken", list)
		}
		if _, err := ParsePolicy("", list); err == nil {
			t.Errorf("deny %q was taken", list)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"_X!", "_00X.", "_1-800-NXX-XXXX", "_[1-5*]X", "*97", "", "_[", ","} {
		f.Add(s, "12345")
	}
	f.Fuzz(func(t *testing.T, list, number string) {
		p, err := ParsePolicy(list, "")
		if err != nil {
			return
		}
		if p.Check(number) == nil {
			// Whatever an admin allows, nothing but a number reaches
			// the dialplan.
			if err := ValidNumber(number); err != nil {
				t.Fatalf("allow %q let %q through: %v", list, number, err)
			}
		}
	})
}

type originateRecorder struct{ calls []string }

func (o *originateRecorder) Originate(_ context.Context, device, dialContext, number string) error {
	o.calls = append(o.calls, device+" "+dialContext+" "+number)
	return nil
}

func (o *originateRecorder) Hangup(_ context.Context, channel string) error {
	o.calls = append(o.calls, "hangup "+channel)
	return nil
}

func TestDialer(t *testing.T) {
	var out strings.Builder
	rec := &originateRecorder{}
	d := NewDialer(nil, rec, "outbound", zerolog.New(&out))
	ctx := actor.With(context.Background(), actor.Actor{Door: "http", Name: "crm", Remote: "127.0.0.1:5555"})
	if err := d.Dial(ctx, "1001", "PJSIP/1001", "1002"); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 1 || rec.calls[0] != "PJSIP/1001 outbound 1002" {
		t.Fatalf("originated %q", rec.calls)
	}
	for _, n := range []string{"*721001", "*78", "1001&x"} {
		err := d.Dial(ctx, "1001", "PJSIP/1001", n)
		if code := presence.ErrorCode(err); code != presence.CodeNotAllowed && code != presence.CodeInvalidArgument {
			t.Errorf("Dial(%q) = %v", n, err)
		}
	}
	if len(rec.calls) != 1 {
		t.Fatalf("a refused number reached Asterisk: %q", rec.calls)
	}
	// The audit line names the door, the token, the user and the number,
	// for every dial, refused ones included.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"door":"http","actor":"crm","remote":"127.0.0.1:5555","user":"1001","number":"1002"`) ||
		!strings.Contains(lines[0], `"result":"ok"`) || !strings.Contains(lines[1], `"number":"*721001"`) || !strings.Contains(lines[1], `"result":"NOT_ALLOWED"`) {
		t.Fatalf("audit lines:\n%s", out.String())
	}
	// The limit per user: dialBurst at once, then 429's code with a wait.
	var limited error
	for range dialBurst + 1 {
		if err := d.Dial(ctx, "1003", "PJSIP/1003", "1002"); err != nil {
			limited = err
		}
	}
	if presence.ErrorCode(limited) != presence.CodeRateLimited {
		t.Fatalf("the %dth dial for one user was not limited: %v", dialBurst+1, limited)
	}
	if wait, ok := ratelimit.RetryAfter(limited); !ok || wait <= 0 {
		t.Fatalf("the limit says no wait: %v", limited)
	}
	// Another user of the same token is not limited by 1003's.
	if err := d.Dial(ctx, "1004", "PJSIP/1004", "1002"); err != nil {
		t.Fatal(err)
	}
	// A hangup reaches Asterisk and has its audit line too.
	out.Reset()
	if err := d.Hangup(ctx, "PJSIP/1001-00000001"); err != nil || rec.calls[len(rec.calls)-1] != "hangup PJSIP/1001-00000001" {
		t.Fatalf("hangup: %v, %q", err, rec.calls)
	}
	if !strings.Contains(out.String(), `"door":"http","actor":"crm","remote":"127.0.0.1:5555","channel":"PJSIP/1001-00000001","result":"ok"`) {
		t.Fatalf("hangup audit line: %s", out.String())
	}
}
