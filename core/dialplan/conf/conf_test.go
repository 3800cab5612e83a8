package conf

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/presenced/presenced/core/hints"
)

func load(t *testing.T, name string) (Dialplan, []Problem) {
	t.Helper()
	return loadIn(t, ".", name)
}

// loadIn loads name with dir as Asterisk's configuration directory.
func loadIn(t *testing.T, dir, name string) (Dialplan, []Problem) {
	t.Helper()
	cfg, probs := Loader{FS: os.DirFS("testdata"), Dir: dir}.Load(name)
	dp, more := Hints(cfg)
	probs = append(probs, more...)
	SortProblems(probs)
	return dp, probs
}

func findHint(dp Dialplan, key string) (HintDef, bool) {
	for _, h := range dp.Hints {
		if h.Key() == key {
			return h, true
		}
	}
	return HintDef{}, false
}

func TestFreePBXTree(t *testing.T) {
	dp, probs := loadIn(t, "freepbx", "extensions.conf")
	for _, p := range probs {
		// The one report: a hint with two providers (Asterisk takes them).
		if p.Line == 8 && strings.HasSuffix(p.File, "extensions_custom.conf") && strings.Contains(p.Msg, "2 presence providers") && !p.Error {
			continue
		}
		t.Errorf("unexpected problem: %s", p)
	}
	// 300 generated + the pattern + operator in ops-desk + 3001 3002 3003 3004 + 4001 4002.
	if len(dp.Hints) != 300+1+1+4+2 {
		t.Fatalf("%d hints", len(dp.Hints))
	}
	checks := []struct {
		key, app, file string
		line           int
		pattern        bool
	}{
		{"2000@ext-local", "PJSIP/2000&Custom:DND2000,CustomPresence:2000", "freepbx/extensions_additional.conf", 9, false},
		{"2299@ext-local", "PJSIP/2299&Custom:DND2299,CustomPresence:2299", "freepbx/extensions_additional.conf", 1504, false},
		{"_2XXX@ext-local-custom", "PJSIP/${EXTEN},CustomPresence:${EXTEN}", "freepbx/extensions_additional.conf", 1507, true},
		// From the template: reported at the template's line.
		{"operator@ops-desk", "PJSIP/operator,CustomPresence:operator", "freepbx/extensions_custom.conf", 3, false},
		{"3001@ops-desk", "PJSIP/3001&PJSIP/3001-mobile,CustomPresence:3001&CustomPresence:3001-mobile", "freepbx/extensions_custom.conf", 8, false},
		{"3002@ops-desk", "PJSIP/3002,CustomPresence:3002", "freepbx/extensions_custom.conf", 9, false},
		{"3003@from-internal-custom", "PJSIP/3003,CustomPresence:3003", "freepbx/extensions_custom.conf", 15, false},
		// [ext-local](+) in another file adds to ext-local.
		{"3004@ext-local", ",CustomPresence:3004", "freepbx/extensions_custom.conf", 18, false},
		// Globbed includes, in name order; the second adds to the first's context.
		{"4001@lobby", "PJSIP/lobby-phone", "freepbx/extensions_hints.d/10-lobby.conf", 2, false},
		{"4002@lobby", "Custom:night-mode", "freepbx/extensions_hints.d/20-night.conf", 2, false},
	}
	for _, c := range checks {
		h, ok := findHint(dp, c.key)
		if !ok {
			t.Errorf("no hint %s", c.key)
			continue
		}
		if h.App() != c.app || h.File != c.file || h.Line != c.line || h.Pattern != c.pattern {
			t.Errorf("%s: %q at %s:%d pattern=%v; want %q at %s:%d pattern=%v", c.key, h.App(), h.File, h.Line, h.Pattern, c.app, c.file, c.line, c.pattern)
		}
	}
	if got := strings.Join(dp.Includes["from-internal"], ","); got != "from-internal-custom,from-internal-additional" {
		t.Errorf("includes of from-internal: %q", got)
	}
	// Nothing inside the block comment was read; [globals] got the included variable.
	if _, ok := findHint(dp, "h@from-internal"); ok {
		t.Error("a priority-1 line was taken for a hint")
	}
}

func TestMistakes(t *testing.T) {
	dp, probs := load(t, "mistakes/extensions.conf")
	want := []struct {
		line int
		err  bool
		has  string
	}{
		{4, true, "second hint for 1001@good"},
		{6, true, "'same' with no extension"},
		{7, false, "no '='"},
		{8, false, "unknown directive '#frobnicate'"},
		{9, false, "needs an argument"},
		{10, false, "#exec /usr/local/bin/make-hints is not run"},
		{11, true, "hint with no extension"},
		{12, false, "label missing trailing ')'"},
		{14, true, "inheritance requested, but category 'nosuchtemplate' does not exist"},
	}
	if len(probs) != len(want) {
		for _, p := range probs {
			t.Log(p)
		}
		t.Fatalf("%d problems, want %d", len(probs), len(want))
	}
	for i, w := range want {
		p := probs[i]
		if p.File != "mistakes/extensions.conf" || p.Line != w.line || p.Error != w.err || !strings.Contains(p.Msg, w.has) {
			t.Errorf("problem %d: %s; want line %d error=%v containing %q", i, p, w.line, w.err, w.has)
		}
	}
	// 1001 (first), 1004; nothing after the line that stopped the file.
	if len(dp.Hints) != 2 || dp.Hints[0].Devices[0] != "PJSIP/1001" || dp.Hints[1].Exten != "1004" {
		t.Fatalf("hints %+v", dp.Hints)
	}
}

func TestFatalMistakes(t *testing.T) {
	tests := []struct {
		file  string
		line  int
		has   string
		hints []string
	}{
		{"mistakes/nocontext.conf", 1, "no category context", nil},
		{"mistakes/addition.conf", 1, "category addition requested, but category 'early' does not exist", nil},
		{"mistakes/unterminated.conf", 3, "unterminated block comment", []string{"6001@ctx"}},
		{"mistakes/missing-include.conf", 3, `"mistakes/not-there.conf" was listed as a #include but it does not exist`, []string{"8001@ctx"}},
		{"mistakes/loop-a.conf", 2, "include loop: mistakes/loop-a.conf -> mistakes/loop-b.conf -> mistakes/loop-a.conf", []string{"7001@loop", "7002@loop"}},
		{"mistakes/none.conf", 0, "file not found", nil},
	}
	for _, tt := range tests {
		dp, probs := load(t, tt.file)
		if len(probs) != 1 || probs[0].Line != tt.line || !strings.Contains(probs[0].Msg, tt.has) {
			t.Errorf("%s: problems %v; want one at line %d containing %q", tt.file, probs, tt.line, tt.has)
		}
		var keys []string
		for _, h := range dp.Hints {
			keys = append(keys, h.Key())
		}
		if strings.Join(keys, " ") != strings.Join(tt.hints, " ") {
			t.Errorf("%s: hints %v, want %v", tt.file, keys, tt.hints)
		}
	}
}

func TestStripComments(t *testing.T) {
	tests := []struct {
		in       string
		depth    int
		out      string
		outDepth int
	}{
		{"exten => 1,1,NoOp(x) ; comment", 0, "exten => 1,1,NoOp(x) ", 0},
		{`exten => 1,1,NoOp(a\;b)`, 0, "exten => 1,1,NoOp(a;b)", 0},
		{"a ;-- block --; b", 0, "a  b", 0},
		{"a ;-- opens", 0, "a ", 1},
		{"still inside", 1, "", 1},
		{"closes --; after", 1, " after", 0},
		{";--- not a block start", 0, "", 0},
		{"a ;-- one ;-- two --; --; b", 0, "a  b", 0},
		{"a --; b", 0, "a --; b", -1}, // Asterisk reads this line as it stands
	}
	for _, tt := range tests {
		out, d := stripComments(tt.in, tt.depth)
		if out != tt.out || d != tt.outDepth {
			t.Errorf("stripComments(%q, %d) = %q, %d; want %q, %d", tt.in, tt.depth, out, d, tt.out, tt.outDepth)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"[a](!)\nexten => 1,hint,PJSIP/1\n", ";--\n--;\n#include x\n", "[b](a,+)\nsame => n,NoOp\n", "\\;x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines, probs := Parse("fuzz.conf", strings.NewReader(s))
		for _, l := range lines {
			if l.Num < 1 || l.Kind < Category || l.Kind > Directive {
				t.Fatalf("bad line %+v", l)
			}
		}
		for _, p := range probs {
			if p.File != "fuzz.conf" || p.Msg == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
		cfg := &Config{}
		var cur *Cat
		for _, l := range lines {
			switch l.Kind {
			case Category:
				cur = &Cat{Name: l.Name}
				cfg.Categories = append(cfg.Categories, cur)
			case Variable:
				if cur != nil {
					cur.Vars = append(cur.Vars, l)
				}
			}
		}
		Hints(cfg)
	})
}

func hintOf(ctx, exten, devs, provs string) hints.Hint {
	h := hints.Hint{Context: ctx, Exten: exten}
	h.Devices, h.Providers = hints.ParseHintApp(devs + "," + provs)
	return h
}

func TestPriorities(t *testing.T) {
	dp, probs := load(t, "mistakes/priorities.conf")
	want := []struct {
		line int
		has  string
	}{
		{2, "can't use 'next' priority on the first entry"},
		{6, "invalid priority/label 'nowhere'"},
		{7, "invalid priority/label '0'"},
		{9, "priority 0 ('n' after a hint)"},
	}
	if len(probs) != len(want) {
		t.Fatalf("problems %v", probs)
	}
	for i, w := range want {
		if probs[i].Line != w.line || !strings.Contains(probs[i].Msg, w.has) {
			t.Errorf("problem %d: %s; want line %d with %q", i, probs[i], w.line, w.has)
		}
	}
	// "s" right after a hint repeats the hint priority, so pbx_config registers 103 as a hint (of "NoOp").
	var keys []string
	for _, h := range dp.Hints {
		keys = append(keys, h.Key())
	}
	if strings.Join(keys, " ") != "102@p 103@p" {
		t.Fatalf("hints %v", keys)
	}
}

// What `presenced dialplan check` reports beyond Asterisk's own refusals:
// each at the line it is about, with paths whole.
func TestCheckReports(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/extensions.conf": {Data: []byte("[internal]\n" +
			"exten => 1001,hint,PJSIP/1001;PJSIP/1002,CustomPresence:1001\n" + // 2: a ';' in the device list
			"exten => 1002,1,Answer()\n" +
			"exten => 1002,1,Hangup()\n" + // 4: priority 1 twice
			"exten => 1003,hint,PJSIP/1003,CustomPresence:1003&CustomPresence:1003-mobile\n" + // 5: two providers
			"exten => 1004,hint,PJSIP/1004 ; a comment after a blank is fine\n" +
			"#include sub/a.conf\n" +
			"#include sub\n")}, // 8: a directory
		"etc/sub/a.conf": {Data: []byte("#include sub/b.conf\n")},
		"etc/sub/b.conf": {Data: []byte("[more]\n#include sub/a.conf\n")}, // 2: the loop
	}
	cfg, probs := Loader{FS: fsys, Dir: "etc", Prefix: "/"}.Load("extensions.conf")
	dp, more := Hints(cfg)
	probs = append(probs, more...)
	SortProblems(probs)
	want := []struct {
		at, text string
	}{
		{"/etc/extensions.conf:2", `"PJSIP/1002,CustomPresence:1001" is not part of it`},
		{"/etc/extensions.conf:4", "priority 1 of 1002@internal is given twice (first at /etc/extensions.conf:3)"},
		{"/etc/extensions.conf:5", "2 presence providers (CustomPresence:1003, CustomPresence:1003-mobile)"},
		{"/etc/extensions.conf:8", "/etc/sub is a directory"},
		{"/etc/sub/b.conf:2", "include loop: /etc/sub/a.conf -> /etc/sub/b.conf -> /etc/sub/a.conf"},
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d", len(probs), len(want))
	}
	for i, p := range probs {
		if i < len(want) && (!strings.HasPrefix(p.String(), want[i].at+":") || !strings.Contains(p.Msg, want[i].text)) {
			t.Errorf("problem %d: %s\nwant at %s: %s", i, p, want[i].at, want[i].text)
		}
	}
	if h, ok := findHint(dp, "1001@internal"); !ok || strings.Join(h.Devices, "&") != "PJSIP/1001" || len(h.Providers) != 0 {
		t.Errorf("the hint as Asterisk reads it: %+v", h)
	}
	if h, ok := findHint(dp, "1003@internal"); !ok || len(h.Providers) != 2 {
		t.Errorf("providers split: %+v", h)
	}
}
