package presence_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/presenced/presenced/core/presence"
	"github.com/presenced/presenced/internal/astemu"
	"github.com/presenced/presenced/internal/transcript"
)

// The V4 write of presence-writes.jsonl: Encode must produce exactly what
// was sent to a real Asterisk.
func TestEncodeMatchesRecordedV4(t *testing.T) {
	got := presence.Encode(presence.Value{State: presence.XA, Subtype: `on "break"`, Message: `said "hi", C:\dir, back at 3 (maybe)`})
	want := "xa,b24gImJyZWFrIg==,c2FpZCAiaGkiLCBDOlxkaXIsIGJhY2sgYXQgMyAobWF5YmUp,e"
	if got != want {
		t.Fatalf("Encode = %q, want %q", got, want)
	}
}

func TestEncodeNeverEmptyNoRawComma(t *testing.T) {
	for _, st := range presence.States() {
		for _, text := range []string{"", ",", "a,b,c", "x"} {
			enc := presence.Encode(presence.Value{State: st, Subtype: text, Message: text})
			if enc == "" || strings.Count(enc, ",") != 3 || !strings.HasSuffix(enc, ",e") || !strings.HasPrefix(enc, st.String()+",") {
				t.Errorf("Encode(%v, %q) = %q", st, text, enc)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		raw     string
		want    presence.Value
		wantErr presence.Code
	}{
		{raw: "available", want: presence.Value{State: presence.Available}},
		{raw: "DND,,Do not disturb", want: presence.Value{State: presence.DND, Message: "Do not disturb"}},
		{raw: "away,lunch,back soon", want: presence.Value{State: presence.Away, Subtype: "lunch", Message: "back soon"}},
		{raw: `away,"lunch",said "hi" C:\dir (back at 3)`, want: presence.Value{State: presence.Away, Subtype: `"lunch"`, Message: `said "hi" C:\dir (back at 3)`}},
		{raw: "xa,b24gdmFjYXRpb24=,YmFjayBNb25kYXksIDlhbSAvIG9rPw==,e", want: presence.Value{State: presence.XA, Subtype: "on vacation", Message: "back Monday, 9am / ok?"}},
		// T3/V3: the fourth field holds an 'e', so Asterisk decodes garbage.
		{raw: "dnd,,see you, later", want: presence.Value{State: presence.DND, Message: "\xb1\xe7\xbf\xca\x8b"}},
		{raw: "not_set", want: presence.Value{}},
		{raw: "away,,,e,extra,fields", want: presence.Value{State: presence.Away}},
		{raw: "", wantErr: presence.CodeInvalidState},
		{raw: "busy,x,y", wantErr: presence.CodeInvalidState},
		{raw: "away,lunch,back soon, ok", wantErr: presence.CodeInvalidArgument}, // T2
		{raw: ",x", wantErr: presence.CodeInvalidState},
	}
	for _, tt := range tests {
		got, err := presence.Decode(tt.raw)
		if code := presence.ErrorCode(err); code != tt.wantErr {
			t.Errorf("Decode(%q) error %v, want code %q", tt.raw, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("Decode(%q) = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

// hostile is text that breaks naive PRESENCE_STATE writes.
var hostile = []string{
	"", "plain", "comma, inside", ",,,", "a,b,c,e", `"quoted"`, `back\slash`, `\\`, `\"`,
	"(paren)", ")(", "line\nbreak", "crlf\r\n", "tab\there", "${CALLERID(num)}", "$[1+1]", "x=y&z",
	"Grüße 😀 日本語", "=", "e", "see you, later", strings.Repeat("é", 127) + "x", strings.Repeat("x", 255),
	strings.Repeat("€", 85), "PRESENCE_STATE(CustomPresence:1001)", " leading and trailing ",
}

// What Asterisk stores for the encoded value decodes back to exactly the
// input: both through our Decode and through the emulated Asterisk's
// PRESENCE_STATE read, which models func_presencestate independently.
func TestHostileTextRoundTrip(t *testing.T) {
	ast := astemu.New()
	for i, sub := range hostile {
		msg := hostile[len(hostile)-1-i]
		v := presence.Value{State: presence.Away, Subtype: sub, Message: msg}
		if err := v.Validate(); err != nil {
			t.Fatalf("Validate(%q, %q): %v", sub, msg, err)
		}
		if !ast.WriteFunction("PRESENCE_STATE(CustomPresence:1001)", presence.Encode(v)) {
			t.Fatalf("Asterisk rejected %q: %v", presence.Encode(v), ast.Log())
		}
		stored, _ := ast.DBGet("CustomPresence", "1001")
		got, err := presence.Decode(stored)
		if err != nil || !got.Same(v) {
			t.Errorf("Decode(stored %q) = %+v, %v; want %+v", stored, got, err, v)
		}
		for field, want := range map[string]string{"value": "away", "subtype": sub, "message": msg} {
			if r, ok := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001," + field + ")"); !ok || r != want {
				t.Errorf("PRESENCE_STATE(,%s) = %q, %v; want %q", field, r, ok, want)
			}
		}
		if r, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:1001,message,e)"); r != base64.StdEncoding.EncodeToString([]byte(msg)) {
			t.Errorf("PRESENCE_STATE(,message,e) = %q for %q", r, msg)
		}
	}
}

func TestValidateLimits(t *testing.T) {
	tests := []struct {
		v    presence.Value
		want presence.Code
	}{
		{presence.Value{Message: strings.Repeat("x", 255)}, ""},
		{presence.Value{Message: strings.Repeat("x", 256)}, presence.CodeTooLong},
		{presence.Value{Subtype: strings.Repeat("é", 128)}, presence.CodeTooLong},
		{presence.Value{Message: "bad \xff utf8"}, presence.CodeInvalidText},
		{presence.Value{Subtype: "nul\x00"}, presence.CodeInvalidText},
		{presence.Value{State: presence.State(7)}, presence.CodeInvalidState},
	}
	for _, tt := range tests {
		if got := presence.ErrorCode(tt.v.Validate()); got != tt.want {
			t.Errorf("Validate(%+v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestParseState(t *testing.T) {
	for _, s := range []string{"not_set", "UNAVAILABLE", "Available", "away", "XA", "chat", "DnD"} {
		st, err := presence.ParseState(s)
		if err != nil || st.String() != strings.ToLower(s) {
			t.Errorf("ParseState(%q) = %v, %v", s, st, err)
		}
	}
	for _, s := range []string{"", "busy", "invalid", "away ", "dnd,"} {
		if _, err := presence.ParseState(s); presence.ErrorCode(err) != presence.CodeInvalidState {
			t.Errorf("ParseState(%q) error = %v, want INVALID_STATE", s, err)
		}
	}
}

func TestValidateUser(t *testing.T) {
	for _, u := range []string{"1001", "alice", "a.b-c_d+e@example.com", strings.Repeat("9", 64)} {
		if err := presence.ValidateUser(u); err != nil {
			t.Errorf("ValidateUser(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"", "a b", "1001)", "x,y", "${X}", "a/b", "a:b", `"q"`, strings.Repeat("9", 65), "é", "a\n"} {
		if err := presence.ValidateUser(u); presence.ErrorCode(err) != presence.CodeInvalidUser {
			t.Errorf("ValidateUser(%q) = %v, want INVALID_USER", u, err)
		}
	}
	if u, err := presence.ParseProvider("customPRESENCE:1001"); err != nil || u != "1001" {
		t.Errorf("ParseProvider = %q, %v", u, err)
	}
	if _, err := presence.ParseProvider("PJSIP/1001"); err == nil {
		t.Error("ParseProvider accepted PJSIP/1001")
	}
}

// Every PRESENCE_STATE read recorded in presence-writes.jsonl agrees with
// Decode of the raw value Asterisk had stored (read with DB() just before).
func TestDecodeAgreesWithRecordedReads(t *testing.T) {
	lines, err := transcript.Load("presence-writes.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	checked := 0
	for i := 0; i+1 < len(lines); i++ {
		cmd := strings.TrimSuffix(lines[i].Data, "\n")
		if lines[i].From != "server" || lines[i+1].From != "asterisk" {
			continue
		}
		reply := strings.TrimSuffix(lines[i+1].Data, "\n")
		data := ""
		if open := strings.IndexByte(reply, '('); open >= 0 {
			data = reply[open+1 : strings.LastIndexByte(reply, ')')]
		}
		switch {
		case cmd == "GET VARIABLE DB(CustomPresence/1002)":
			stored = data
		case strings.HasPrefix(cmd, "GET VARIABLE PRESENCE_STATE(CustomPresence:1002,"):
			args := strings.Split(strings.TrimSuffix(strings.TrimPrefix(cmd, "GET VARIABLE PRESENCE_STATE(CustomPresence:1002,"), ")"), ",")
			v := presence.Value{}
			if stored != "" {
				if v, err = presence.Decode(stored); err != nil {
					t.Fatalf("Decode(%q): %v", stored, err)
				}
			}
			want := map[string]string{"value": v.State.String(), "subtype": v.Subtype, "message": v.Message}[args[0]]
			if len(args) > 1 && args[0] != "value" {
				want = base64.StdEncoding.EncodeToString([]byte(want))
			}
			if data != want {
				t.Errorf("%s: recorded %q, Decode(%q) gives %q", cmd, data, stored, want)
			}
			checked++
		}
	}
	if checked < 8 {
		t.Fatalf("only %d recorded reads checked", checked)
	}
}

// FuzzDecode: any stored value either fails to parse or gives a value that,
// once sanitised, is valid and survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"available", "dnd,,see you, later", "xa,b24gdmFjYXRpb24=,YmFjayBNb25kYXksIDlhbSAvIG9rPw==,e", "away,,,e,x", "DND,a,b,", "away,lunch,back, ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := presence.Decode(raw)
		if err != nil {
			return
		}
		v = v.Sanitize()
		if err := v.Validate(); err != nil {
			t.Fatalf("sanitised %q is invalid: %v", raw, err)
		}
		again, err := presence.Decode(presence.Encode(v))
		if err != nil || !again.Same(v) {
			t.Fatalf("round trip of %+v gave %+v, %v", v, again, err)
		}
	})
}

// FuzzEncodeRoundTrip: any valid text, through what the emulated Asterisk
// stores and evaluates, comes back exactly.
func FuzzEncodeRoundTrip(f *testing.F) {
	for i, s := range hostile {
		f.Add(s, hostile[len(hostile)-1-i])
	}
	f.Fuzz(func(t *testing.T, sub, msg string) {
		v := presence.Value{State: presence.Chat, Subtype: sub, Message: msg}
		if v.Validate() != nil {
			return
		}
		ast := astemu.New()
		if !ast.WriteFunction("PRESENCE_STATE(CustomPresence:u)", presence.Encode(v)) {
			t.Fatalf("rejected: %v", ast.Log())
		}
		got, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:u,message)")
		gotSub, _ := ast.ReadFunction("PRESENCE_STATE(CustomPresence:u,subtype)")
		if got != msg || gotSub != sub {
			t.Fatalf("stored %q/%q, read back %q/%q", sub, msg, gotSub, got)
		}
	})
}

func TestRecordValidate(t *testing.T) {
	good := presence.Record{Current: presence.Value{State: presence.Away, Message: "lunch"}, History: []presence.Value{{}, {State: presence.DND}},
		Written: map[string]presence.Value{"": {State: presence.Away}, "paris": {State: presence.Away}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("a record presenced writes: %v", err)
	}
	for name, bad := range map[string]presence.Record{
		"current":  {Current: presence.Value{State: presence.Away, Message: "\xff"}},
		"history":  {Current: presence.Value{State: presence.Away}, History: []presence.Value{{State: presence.State(99)}}},
		"written":  {Current: presence.Value{State: presence.Away}, Written: map[string]presence.Value{"paris": {Message: "a\x00b"}}},
		"site":     {Current: presence.Value{State: presence.Away}, Written: map[string]presence.Value{"Paris/../x": {State: presence.Away}}},
		"too long": {Current: presence.Value{State: presence.Away, Subtype: strings.Repeat("x", presence.MaxFieldBytes+1)}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%s: a bad record passed", name)
		}
	}
}
