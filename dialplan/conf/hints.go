package conf

import (
	"fmt"
	"strings"

	"github.com/presenced/presenced/hints"
)

// HintDef is a hint as the dialplan defines it, with where.
type HintDef struct {
	hints.Hint
	// Pattern: the extension is a pattern (_X.), which Asterisk turns into
	// hints only as extensions matching it are used; it is not a hint of
	// its own.
	Pattern bool   `json:"pattern,omitempty"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// Dialplan is what presenced takes from extensions.conf.
type Dialplan struct {
	Hints []HintDef
	// Includes lists each context's `include =>` contexts in order.
	Includes map[string][]string
}

// Hints reads the hints and context includes of a loaded extensions.conf
// as pbx_config.c does: every category but templates, [general] and
// [globals] is a context (categories of one name make one context), `exten`
// and `same` lines with priority "hint" are hints, the first hint of an
// extension wins.
func Hints(cfg *Config) (Dialplan, []Problem) {
	dp := Dialplan{Includes: map[string][]string{}}
	var probs []Problem
	first := map[string]HintDef{}
	for _, cat := range cfg.Categories {
		if cat.Template || strings.EqualFold(cat.Name, "general") || strings.EqualFold(cat.Name, "globals") {
			continue
		}
		last := "" // lastextension: reset for each category
		for _, v := range cat.Vars {
			prob := func(isErr bool, format string, args ...any) {
				probs = append(probs, Problem{File: v.File, Line: v.Num, Error: isErr, Msg: fmt.Sprintf(format, args...)})
			}
			var ext, rest string
			switch {
			case strings.HasPrefix(strings.ToLower(v.Name), "same"):
				if last == "" {
					prob(true, "'same' with no extension before it in context '%s'", cat.Name)
					continue
				}
				ext, rest = last, v.Value
			case strings.EqualFold(v.Name, "exten"):
				ext, rest, _ = strings.Cut(v.Value, ",")
				ext = strings.TrimSpace(ext)
				last = ext
			case strings.EqualFold(v.Name, "include"):
				dp.Includes[cat.Name] = append(dp.Includes[cat.Name], v.Value)
				continue
			default:
				continue
			}
			pri, app, _ := strings.Cut(rest, ",")
			pri = strings.TrimSpace(pri)
			if label := strings.IndexByte(pri, '('); label >= 0 {
				if !strings.Contains(pri[label:], ")") {
					prob(false, "label missing trailing ')' (line ignored)")
					continue
				}
				pri = pri[:label]
			}
			if pri != "hint" {
				continue
			}
			if c := strings.IndexByte(ext, '/'); c >= 0 {
				ext = ext[:c] // caller ID match: not part of the hint's name
			}
			if ext == "" {
				prob(true, "hint with no extension")
				continue
			}
			app = strings.TrimLeft(app, " \t")
			if i := strings.IndexByte(app, '('); i >= 0 && !strings.Contains(app, "${") && !strings.Contains(app, "$[") {
				app = app[:i] // pbx_config splits app(data) even here
			}
			devs, provs := hints.ParseHintApp(app)
			d := HintDef{Hint: hints.Hint{Context: cat.Name, Exten: ext, Devices: devs, Providers: provs},
				Pattern: strings.HasPrefix(ext, "_"), File: v.File, Line: v.Num}
			if prev, dup := first[d.Key()]; dup {
				prob(true, "second hint for %s (the first, at %s:%d, is the one Asterisk keeps)", d.Key(), prev.File, prev.Line)
				continue
			}
			first[d.Key()] = d
			dp.Hints = append(dp.Hints, d)
		}
	}
	return dp, probs
}
