// Package conf reads the hints of an Asterisk dialplan from extensions.conf
// and the files it includes, as Asterisk 22 reads them (main/config.c,
// pbx/pbx_config.c): comments and block comments, #include and #tryinclude
// with globs and paths relative to Asterisk's configuration directory,
// #exec (reported, never run), templates, category additions, `exten =>`,
// `same =>` and `include =>`. Every problem comes with its file and line.
//
// Parse is pure (io.Reader in, lines out); Load resolves includes through
// an fs.FS; Hints turns the loaded configuration into hints.
package conf

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Kind is the kind of a configuration line.
type Kind int

// The kinds of line.
const (
	Category  Kind = iota + 1 // [name](options)
	Variable                  // name = value, name => value
	Directive                 // #include, #tryinclude, #exec, and unknown ones
)

// Line is one meaningful line of a configuration file, comments removed.
type Line struct {
	File string
	Num  int
	Kind Kind
	// Category: the name; Variable: the name; Directive: the directive
	// ("include", lower-cased).
	Name string
	// Variable: the value; Directive: the argument, dequoted.
	Value string
	// Category: the options inside (...) after the name, split on commas.
	Options []string
	// Variable: written with "=>".
	Object bool
	// Glued is the text after a ";" that directly follows the value
	// ("PJSIP/1001;PJSIP/1002"): a comment to Asterisk, most likely meant
	// as part of the value.
	Glued string
}

// Problem is something Asterisk would warn about or refuse, at file:line.
type Problem struct {
	File  string
	Line  int
	Error bool // Asterisk refuses (stops reading the file, or drops the entry), rather than warns
	Msg   string
}

// SortProblems orders problems by file, then line, keeping the order of
// problems on one line.
func SortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
}

func (p Problem) String() string {
	sev := "warning"
	if p.Error {
		sev = "error"
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, sev, p.Msg)
}

// maxLine is Asterisk's line buffer (8192 bytes with the newline).
const maxLine = 8191

// Parse reads one configuration file as config_text_file_load does and
// returns its lines. A line that stops Asterisk reading the file (an
// unclosed "[" or "(") ends the result, with an error problem.
func Parse(name string, r io.Reader) ([]Line, []Problem) {
	var lines []Line
	var probs []Problem
	prob := func(num int, isErr bool, format string, args ...any) {
		probs = append(probs, Problem{File: name, Line: num, Error: isErr, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	depth, started := 0, 0 // block comment nesting, and the line the outermost began on
	for num := 1; sc.Scan(); num++ {
		raw := sc.Text()
		if num == 1 {
			raw = strings.TrimPrefix(raw, "\xEF\xBB\xBF")
		}
		if len(raw) > maxLine {
			prob(num, true, "line longer than Asterisk reads (%d bytes); it is cut", maxLine)
			raw = raw[:maxLine]
		}
		before := depth
		text, d := stripComments(raw, depth)
		if depth == 0 && d > 0 {
			started = num
		}
		if d < 0 {
			prob(num, true, `"--;" closes a block comment that was never opened: Asterisk ignores what follows until a ";--"`)
		}
		depth = d
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		l, p, stop := classify(name, num, text)
		if p != nil {
			probs = append(probs, *p)
		}
		if stop {
			return lines, probs
		}
		if l != nil {
			if before == 0 && d == 0 {
				l.Glued = gluedComment(raw)
			}
			lines = append(lines, *l)
		}
	}
	if err := sc.Err(); err != nil {
		prob(0, true, "reading: %v", err)
	}
	if depth > 0 {
		prob(started, false, "unterminated block comment (;-- without --;) beginning here")
	}
	return lines, probs
}

// gluedComment returns what follows a line comment's ";" written straight
// after text, without a blank between ("" when there is none).
func gluedComment(raw string) string {
	for i := 1; i < len(raw); i++ {
		if raw[i] != ';' || raw[i-1] == '\\' {
			continue
		}
		if strings.HasPrefix(raw[i:], ";--") {
			return ""
		}
		if c := raw[i-1]; c != ' ' && c != '\t' {
			return strings.TrimSpace(raw[i+1:])
		}
		return ""
	}
	return ""
}

// stripComments removes comments from one line, as the comment loop of
// config_text_file_load does: "\;" is a literal ";", ";--" (not ";---")
// opens a block comment, "--;" closes one, any other ";" ends the line.
// It returns the text to process and the block nesting after the line.
func stripComments(line string, depth int) (string, int) {
	var out strings.Builder
	keep := depth == 0 // whether text is being kept
	start := 0         // start of the pending text
	for i := 0; i < len(line); i++ {
		if line[i] != ';' {
			continue
		}
		switch {
		case i > 0 && line[i-1] == '\\':
			if keep {
				out.WriteString(line[start : i-1])
				out.WriteByte(';')
			}
			start = i + 1
		case strings.HasPrefix(line[i:], ";--") && !strings.HasPrefix(line[i:], ";---"):
			if keep {
				out.WriteString(line[start:i])
			}
			depth++
			keep = false
			i += 2
			start = i + 1
		case i >= 2 && line[i-1] == '-' && line[i-2] == '-' && i-2 >= start:
			if depth == 0 {
				// Asterisk's counter goes to -1: this line is then read as
				// it stands and every later one is a comment, until a ";--".
				out.WriteString(line[start:])
				return out.String(), -1
			}
			depth--
			if depth == 0 {
				keep = true
			}
			start = i + 1
		default:
			if keep && depth == 0 {
				out.WriteString(line[start:i])
				return out.String(), depth
			}
			start = i + 1
		}
	}
	if keep && depth == 0 {
		out.WriteString(line[start:])
	}
	return out.String(), depth
}

// classify turns a comment-free, trimmed line into a Line (process_text_line).
func classify(file string, num int, text string) (*Line, *Problem, bool) {
	errp := func(stop bool, format string, args ...any) *Problem {
		return &Problem{File: file, Line: num, Error: stop, Msg: fmt.Sprintf(format, args...)}
	}
	switch text[0] {
	case '[':
		end := strings.IndexByte(text, ']')
		if end < 0 {
			return nil, errp(true, "no closing ']': Asterisk stops reading %s here", file), true
		}
		l := &Line{File: file, Num: num, Kind: Category, Name: text[1:end]}
		rest := text[end+1:]
		if strings.HasPrefix(rest, "(") {
			close := strings.IndexByte(rest, ')')
			if close < 0 {
				return nil, errp(true, "no closing ')': Asterisk stops reading %s here", file), true
			}
			l.Options = strings.Split(rest[1:close], ",")
		}
		return l, nil, false
	case '#':
		dir, arg, _ := strings.Cut(text[1:], " ")
		if i := strings.IndexAny(dir, "\t"); i >= 0 {
			dir, arg = dir[:i], dir[i+1:]+" "+arg
		}
		arg = strings.TrimSpace(arg)
		if len(arg) >= 2 && (arg[0] == '"' && arg[len(arg)-1] == '"' || arg[0] == '<' && arg[len(arg)-1] == '>') {
			arg = arg[1 : len(arg)-1]
		}
		l := &Line{File: file, Num: num, Kind: Directive, Name: strings.ToLower(dir), Value: arg}
		switch l.Name {
		case "include", "tryinclude", "exec":
		default:
			return nil, errp(false, "unknown directive '#%s' (ignored)", dir), false
		}
		if arg == "" {
			return nil, errp(false, "directive '#%s' needs an argument (ignored)", dir), false
		}
		return l, nil, false
	}
	s := text
	if s[0] == '\\' {
		if len(s) < 2 || s[1] < 33 {
			return nil, errp(true, "invalid escape: Asterisk stops reading %s here", file), true
		}
		s = s[1:]
	}
	eq := strings.IndexByte(s, '=')
	if eq < 0 {
		return nil, errp(false, "no '=' in line (ignored)"), false
	}
	name, value := s[:eq], s[eq+1:]
	l := &Line{File: file, Num: num, Kind: Variable}
	if strings.HasPrefix(value, ">") {
		l.Object = true
		value = value[1:]
	}
	l.Name, l.Value = strings.TrimSpace(name), strings.TrimSpace(value)
	if l.Name == "" {
		return nil, errp(false, "no variable name (ignored)"), false
	}
	return l, nil, false
}
