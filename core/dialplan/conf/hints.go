package conf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/presenced/presenced/core/hints"
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

// priorityHint is Asterisk's PRIORITY_HINT.
const priorityHint = -1

// priority is the priority parsing of pbx_config.c: "hint", "n"/"next"
// (one after the previous line's), "s"/"same" (the previous line's), a
// number, or a label of this extension; "+N" adds N.
func priority(pri string, lastPri int, labels map[string]int) (int, bool) {
	base, plus, _ := strings.Cut(pri, "+")
	off, _ := strconv.Atoi(plus)
	var p int
	switch base {
	case "hint":
		return priorityHint, true
	case "n", "next":
		if lastPri < -1 {
			return 0, false
		}
		p = lastPri + 1
	case "s", "same":
		if lastPri < -1 {
			return 0, false
		}
		p = lastPri
	default:
		n, err := strconv.Atoi(base)
		if err != nil {
			l, ok := labels[base]
			if !ok {
				return 0, false
			}
			n = l
		} else if n < 1 {
			return 0, false
		}
		p = n
	}
	return p + off, true
}

func priorityProblem(pri string, lastPri int) string {
	base, _, _ := strings.Cut(pri, "+")
	switch {
	case (base == "n" || base == "next") && lastPri < -1:
		return "can't use 'next' priority on the first entry"
	case (base == "s" || base == "same") && lastPri < -1:
		return "can't use 'same' priority on the first entry"
	}
	return fmt.Sprintf("invalid priority/label '%s'", pri)
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
		last := ""    // lastextension: reset for each category
		lastPri := -2 // lastpri: -2 none yet, -1 a hint
		labels := map[string]map[string]int{}
		prios := map[string]map[int]Line{} // priorities given, by extension: a second is refused
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
			label := ""
			if open := strings.IndexByte(pri, '('); open >= 0 {
				end := strings.IndexByte(pri[open:], ')')
				if end < 0 {
					prob(false, "label missing trailing ')' (line ignored)")
					continue
				}
				pri, label = pri[:open], pri[open+1:open+end]
			}
			ipri, ok := priority(pri, lastPri, labels[ext])
			if !ok {
				prob(false, "%s (line ignored)", priorityProblem(pri, lastPri))
				continue
			}
			if ipri == 0 {
				prob(false, "priority 0 ('%s' after a hint): Asterisk ignores this line without a word", pri)
				continue
			}
			lastPri = ipri
			if ipri != priorityHint {
				if prios[ext] == nil {
					prios[ext] = map[int]Line{}
				}
				if first, dup := prios[ext][ipri]; dup {
					prob(false, "priority %d of %s@%s is given twice (first at %s:%d): Asterisk keeps the first and ignores this line (\"already in use\")",
						ipri, ext, cat.Name, first.File, first.Num)
					continue
				}
				prios[ext][ipri] = v
			}
			if label != "" {
				if labels[ext] == nil {
					labels[ext] = map[string]int{}
				}
				labels[ext][label] = ipri
			}
			if ipri != priorityHint {
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
			if v.Glued != "" {
				prob(false, "a ';' right after the hint starts a comment: %q is not part of it (separate devices with &, presence providers after a ,)", v.Glued)
			}
			devs, provs := hints.ParseHintApp(app)
			if len(provs) > 1 {
				prob(false, "%d presence providers (%s), split on & as Asterisk splits them: the hint shows the highest ranked of their presences, as Asterisk combines them",
					len(provs), strings.Join(provs, ", "))
			}
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
