package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Cat is a category (a context, in extensions.conf) with its lines in order.
type Cat struct {
	Name     string
	Template bool // [name](!): a template, not loaded as a context of its own
	File     string
	Line     int
	Vars     []Line
}

// Config is a loaded configuration: the categories in the order Asterisk
// reads them, includes expanded.
type Config struct {
	Categories []*Cat
}

func (c *Config) find(name string) *Cat {
	for _, cat := range c.Categories {
		if cat.Name == name {
			return cat
		}
	}
	return nil
}

// Loader reads configuration files from an fs.FS.
type Loader struct {
	FS fs.FS
	// Dir is Asterisk's configuration directory (astetcdir) inside FS: the
	// base of relative #include paths, whatever file they appear in
	// (BEHAVIOUR.md 4.11). "etc/asterisk" for os.DirFS("/"), "." for a test FS.
	Dir string
	// Prefix is put before FS paths in problems and hint locations ("/" for
	// os.DirFS("/"), so that files read as "/etc/asterisk/extensions.conf").
	Prefix string
}

// maxIncludeDepth is Asterisk's MAX_INCLUDE_LEVEL.
const maxIncludeDepth = 10

// Load reads the file name (relative to Dir unless it starts with "/") and
// every file it includes.
func (l Loader) Load(name string) (*Config, []Problem) {
	ld := &loading{Loader: l, cfg: &Config{}}
	files, _ := ld.resolve(name)
	if len(files) == 0 {
		ld.probs = append(ld.probs, Problem{File: l.display(l.fsPath(name)), Error: true, Msg: "file not found"})
		return ld.cfg, ld.probs
	}
	for _, f := range files {
		ld.file(f, nil, nil, nil)
	}
	return ld.cfg, ld.probs
}

type loading struct {
	Loader
	cfg   *Config
	probs []Problem
}

func (l Loader) fsPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return strings.TrimPrefix(path.Clean(p), "/")
	}
	return path.Join(l.Dir, p)
}

func (l Loader) display(p string) string { return l.Prefix + p }

// resolve expands an include argument into existing files, in name order.
func (ld *loading) resolve(arg string) ([]string, error) {
	p := ld.fsPath(arg)
	if strings.ContainsAny(p, "*?[") {
		return fs.Glob(ld.FS, p)
	}
	if _, err := fs.Stat(ld.FS, p); err != nil {
		return nil, err
	}
	return []string{p}, nil
}

// file reads one file into the configuration. cur is the category that
// lines without a header of their own go to (the includer's current one);
// stack is the chain of files including this one; at is the #include
// line that includes it (nil for the top file), where problems of reading
// it are reported.
func (ld *loading) file(p string, cur *Cat, stack []string, at *Line) {
	name := ld.display(p)
	where := Problem{File: name, Error: true}
	if at != nil {
		where.File, where.Line = at.File, at.Num
	}
	report := func(msg string) {
		pr := where
		pr.Msg = msg
		ld.probs = append(ld.probs, pr)
	}
	for i, s := range stack {
		if s == p {
			chain := append(append([]string(nil), stack[i:]...), p)
			for j := range chain {
				chain[j] = ld.display(chain[j])
			}
			report("include loop: " + strings.Join(chain, " -> "))
			return
		}
	}
	if len(stack) >= maxIncludeDepth {
		report(fmt.Sprintf("more than %d levels of #include: %s not read", maxIncludeDepth, name))
		return
	}
	if fi, err := fs.Stat(ld.FS, p); err == nil && fi.IsDir() {
		report(name + " is a directory, not a file (to read every file in it: #include \"dir/*.conf\")")
		return
	}
	data, err := fs.ReadFile(ld.FS, p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // its path is the FS's, without the prefix
		}
		report(fmt.Sprintf("cannot read %s: %v", name, err))
		return
	}
	lines, probs := Parse(name, bytes.NewReader(data))
	ld.probs = append(ld.probs, probs...)
	stack = append(stack, p)
	stop := func(l Line, format string, args ...any) {
		ld.probs = append(ld.probs, Problem{File: name, Line: l.Num, Error: true,
			Msg: fmt.Sprintf(format, args...) + "; Asterisk stops reading " + name + " here"})
	}
	for _, l := range lines {
		switch l.Kind {
		case Category:
			next, ok := ld.category(l, stop)
			if !ok {
				return
			}
			cur = next
		case Directive:
			if l.Name == "exec" {
				ld.probs = append(ld.probs, Problem{File: name, Line: l.Num,
					Msg: "#exec " + l.Value + " is not run by presenced (nor by Asterisk unless execincludes=yes): hints it prints are unknown"})
				continue
			}
			files, _ := ld.resolve(l.Value)
			if len(files) == 0 {
				if l.Name == "include" {
					stop(l, "the file %q was listed as a #include but it does not exist", l.Value)
					return
				}
				continue
			}
			for _, f := range files {
				ld.file(f, cur, stack, &l)
			}
		case Variable:
			if cur == nil {
				stop(l, "no category context for this line")
				return
			}
			cur.Vars = append(cur.Vars, l)
		}
	}
}

// category handles a [name](options) line as process_text_line does:
// "!" makes a template, "+" continues an existing category, any other
// option copies the lines of the category or template of that name.
func (ld *loading) category(l Line, stop func(Line, string, ...any)) (*Cat, bool) {
	cat := &Cat{Name: l.Name, File: l.File, Line: l.Num}
	for _, opt := range l.Options {
		switch {
		case opt == "!":
			cat.Template = true
		case strings.HasPrefix(opt, "+"):
			existing := ld.cfg.find(l.Name)
			if existing == nil {
				stop(l, "category addition requested, but category '%s' does not exist", l.Name)
				return nil, false
			}
			existing.Template = existing.Template || cat.Template
			existing.Vars = append(existing.Vars, cat.Vars...)
			return existing, true
		default:
			base := ld.cfg.find(opt)
			if base == nil {
				stop(l, "inheritance requested, but category '%s' does not exist", opt)
				return nil, false
			}
			cat.Vars = append(cat.Vars, base.Vars...)
		}
	}
	ld.cfg.Categories = append(ld.cfg.Categories, cat)
	return cat, true
}
