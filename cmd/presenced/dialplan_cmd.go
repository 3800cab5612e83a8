package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/presenced/presenced/core/dialplan/conf"
	"github.com/presenced/presenced/core/hints"
)

const dialplanUsage = `usage:
  presenced dialplan hints [--context NAME] [--tech PJSIP] [--user EXT[=DEVICE&DEVICE]]... [--csv FILE] [-o FILE]
      write an include file of hints: each user's phones, DND device and presence
  presenced dialplan hints --remote SITE [--context NAME] [--user EXT]... [--csv FILE] [-o FILE]
      the same for users at another site of a cluster: each hint shows their line there
      (Stasis:presenced-remote-SITE-EXT, driven by presenced) and their presence
  presenced dialplan check [--json] FILE
      read FILE (extensions.conf and what it includes) and print its hints and every problem;
      exit status 1 when there are errors
`

func dialplanCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dialplanUsage)
		return 2
	}
	switch args[0] {
	case "hints":
		return dialplanHints(args[1:], stdout, stderr)
	case "check":
		return dialplanCheck(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, dialplanUsage)
		return 0
	}
	fmt.Fprintf(stderr, "presenced dialplan: unknown command %q\n%s", args[0], dialplanUsage)
	return 2
}

// helpOr2: --help (or -h) asked for is answered on standard output with
// exit status 0; any other flag error is a usage error, 2.
func helpOr2(err error, fs *flag.FlagSet, stdout io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, dialplanUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	}
	return 2
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func dialplanHints(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("presenced dialplan hints", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	context := fs.String("context", "default", "context of the hints (the one your phones subscribe to)")
	tech := fs.String("tech", "PJSIP", "technology of a user given without devices")
	csvFile := fs.String("csv", "", "CSV of users: extension, devices (& or space separated), name")
	out := fs.String("o", "", "write to this file instead of standard output")
	remote := fs.String("remote", "", "write hints for the users of this other site of a cluster (cross-site BLF)")
	var users multiFlag
	fs.Var(&users, "user", "a user: EXT, or EXT=DEVICE&DEVICE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return helpOr2(err, fs, stdout)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "presenced dialplan hints: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var entries []conf.Entry
	for _, u := range users {
		e, err := conf.ParseUser(u, *tech)
		if err != nil {
			fmt.Fprintf(stderr, "presenced dialplan hints: --user %s: %v\n", u, err)
			return 2
		}
		entries = append(entries, e)
	}
	if *csvFile != "" {
		f, err := os.Open(*csvFile)
		if err != nil {
			fmt.Fprintf(stderr, "presenced dialplan hints: %v\n", err)
			return 2
		}
		more, err := conf.ReadUsersCSV(f, *tech)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "presenced dialplan hints: %s: %v\n", *csvFile, err)
			return 2
		}
		entries = append(entries, more...)
	}
	if len(entries) == 0 {
		fmt.Fprintln(stderr, "presenced dialplan hints: no users (give --user or --csv)")
		return 2
	}
	var sb strings.Builder
	write := conf.WriteHints
	if *remote != "" {
		write = func(w io.Writer, context string, entries []conf.Entry) error {
			return conf.WriteRemoteHints(w, context, *remote, entries)
		}
	}
	if err := write(&sb, *context, entries); err != nil {
		fmt.Fprintf(stderr, "presenced dialplan hints: %v\n", err)
		return 2
	}
	if *out == "" {
		fmt.Fprint(stdout, sb.String())
		return 0
	}
	if err := os.WriteFile(*out, []byte(sb.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "presenced dialplan hints: %v\n", err)
		return 1
	}
	return 0
}

// loadDialplan reads an extensions.conf from the real file system, with
// its directory as Asterisk's configuration directory (the base of
// relative #include paths).
func loadDialplan(file string) (conf.Dialplan, []conf.Problem, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return conf.Dialplan{}, nil, err
	}
	if fi, err := os.Stat(abs); err != nil {
		return conf.Dialplan{}, nil, err
	} else if fi.IsDir() {
		return conf.Dialplan{}, nil, fmt.Errorf("%s is a directory: give the file, such as %s", abs, filepath.Join(abs, "extensions.conf"))
	}
	rel := strings.TrimPrefix(filepath.ToSlash(abs), "/")
	l := conf.Loader{FS: os.DirFS("/"), Dir: filepath.ToSlash(filepath.Dir(rel)), Prefix: "/"}
	cfg, probs := l.Load("/" + rel)
	dp, more := conf.Hints(cfg)
	probs = append(append(probs, more...), conf.Check(dp)...)
	conf.SortProblems(probs)
	return dp, probs, nil
}

func dialplanCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("presenced dialplan check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	asJSON := fs.Bool("json", false, "print the hints as a JSON array (problems still go to standard error)")
	if err := fs.Parse(args); err != nil {
		return helpOr2(err, fs, stdout)
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, dialplanUsage)
		return 2
	}
	dp, probs, err := loadDialplan(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "presenced dialplan check: %v\n", err)
		return 2
	}
	if *asJSON {
		type jsonHint struct {
			Context   string   `json:"context"`
			Exten     string   `json:"exten"`
			Devices   []string `json:"devices"`
			Providers []string `json:"providers"`
			Pattern   bool     `json:"pattern,omitempty"`
			File      string   `json:"file"`
			Line      int      `json:"line"`
		}
		out := make([]jsonHint, 0, len(dp.Hints))
		for _, h := range dp.Hints {
			out = append(out, jsonHint{h.Context, h.Exten, nonNil(h.Devices), nonNil(h.Providers), h.Pattern, h.File, h.Line})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return 1
		}
	} else {
		for _, h := range dp.Hints {
			kind := "hint"
			if h.Pattern {
				kind = "pattern hint"
			}
			fmt.Fprintf(stdout, "%s:%d: %s %s => %s (%s)\n", h.File, h.Line, kind, h.Key(), h.App(), describe(h.Hint))
		}
	}
	errs := 0
	for _, p := range probs {
		fmt.Fprintln(stderr, p)
		if p.Error {
			errs++
		}
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%d hints, %d problems (%d errors)\n", len(dp.Hints), len(probs), errs)
	}
	if errs > 0 {
		return 1
	}
	return 0
}

func describe(h hints.Hint) string {
	return fmt.Sprintf("%d devices, %d presence providers", len(h.Devices), len(h.Providers))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
