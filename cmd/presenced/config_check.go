package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/presenced/presenced/core/calls"
	"github.com/presenced/presenced/core/dialplan/conf"
	"github.com/presenced/presenced/views/appws"
	"github.com/presenced/presenced/views/xuc"
)

// settings lists every PRESENCED_ variable presenced reads, without the
// prefix, in Config's order.
func settings() []string {
	t := reflect.TypeOf(Config{})
	var out []string
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("env"); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// unknownVars returns, for each PRESENCED_ variable of environ that
// presenced does not read (a typo, a setting of another version), its
// name and the closest known one ("" when none is close). The test
// switches (PRESENCED_*_TESTS) are not settings and are left alone.
func unknownVars(environ []string) [][2]string {
	known := map[string]bool{}
	for _, s := range settings() {
		known[s] = true
	}
	var out [][2]string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(k, envPrefix)
		if !ok || known[name] || strings.HasSuffix(name, "_TESTS") {
			continue
		}
		out = append(out, [2]string{k, closest(name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// closest returns the known setting nearest to name (with the prefix), if
// it is within a few edits.
func closest(name string) string {
	best, bestD := "", 4
	for _, s := range settings() {
		if d := editDistance(strings.ToUpper(name), s); d < bestD {
			best, bestD = envPrefix+s, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unknownLine is how an unknown variable is reported.
func unknownLine(u [2]string) string {
	if u[1] != "" {
		return fmt.Sprintf("%s is not a presenced setting and is ignored; did you mean %s?", u[0], u[1])
	}
	return fmt.Sprintf("%s is not a presenced setting and is ignored", u[0])
}

// configCheck is `presenced config check`: the configuration of environ
// is read and checked as serve reads it, and so is every file it names,
// without starting anything. It prints what it found; the exit status is
// 0 when presenced would start with it (warnings included), 2 when not.
func configCheck(args []string, environ []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "check" {
		fmt.Fprint(stderr, "usage: presenced config check\n\n  Reads the PRESENCED_* variables and the files they name as presenced serve would,\n  reports what is wrong, and starts nothing. Exit status 0: presenced would start.\n")
		return 2
	}
	for _, u := range unknownVars(environ) {
		fmt.Fprintln(stdout, "warning:", unknownLine(u))
	}
	cfg, err := LoadConfig(environ)
	if err != nil {
		fmt.Fprintln(stderr, "presenced:", err)
		return 2
	}
	failed := false
	file := func(setting, path string, read func(io.Reader) (string, error)) {
		if path == "" {
			return
		}
		f, err := os.Open(path)
		if err == nil {
			var what string
			what, err = read(f)
			f.Close()
			if err == nil {
				fmt.Fprintf(stdout, "ok: %s%s %s: %s\n", envPrefix, setting, path, what)
				return
			}
		}
		failed = true
		fmt.Fprintf(stderr, "presenced: %s%s %s: %v\n", envPrefix, setting, path, cfg.redactor().String(err.Error()))
	}
	if cfg.Dialplan != "" {
		dp, probs, err := loadDialplan(cfg.Dialplan)
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "presenced: %sDIALPLAN: %v\n", envPrefix, err)
		} else {
			fmt.Fprintf(stdout, "ok: %sDIALPLAN %s: %d hints, %d problems (presenced dialplan check %s shows them)\n", envPrefix, cfg.Dialplan, len(dp.Hints), len(probs), cfg.Dialplan)
		}
	}
	file("ROSTER", cfg.Roster, func(r io.Reader) (string, error) {
		us, err := conf.ReadUsersCSV(r, "PJSIP")
		return fmt.Sprintf("%d users", len(us)), err
	})
	file("XUC_USERS", cfg.XucUsers, func(r io.Reader) (string, error) {
		us, err := xuc.ParseUsers(r)
		return fmt.Sprintf("%d users", len(us)), err
	})
	file("APPWS_APPS", cfg.AppwsApps, func(r io.Reader) (string, error) {
		as, err := appws.ParseApps(r)
		return fmt.Sprintf("%d apps", len(as)), err
	})
	file("PHONES", cfg.Phones, func(r io.Reader) (string, error) {
		ps, err := calls.ReadPhones(r)
		return fmt.Sprintf("%d phones", len(ps)), err
	})
	if failed {
		return 2
	}
	if !cfg.hasAMI() && !cfg.hasARI() {
		fmt.Fprintln(stdout, "note: neither AMI (PRESENCED_AMI_USER) nor ARI (PRESENCED_ARI_USER) is set: presenced would run without Asterisk")
	}
	fmt.Fprintln(stdout, "ok: the configuration is valid")
	return 0
}
