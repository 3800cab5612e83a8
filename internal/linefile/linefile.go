// Package linefile reads the small files of one record a line that admins
// write by hand (the xuc users, the apps' passwords, the phones): each
// line trimmed, blank lines and # comments skipped, every error numbered
// by its line, and a record named twice refused.
package linefile

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Read calls record with each record's line, in order. record returns the
// record's key (what may not be given twice: a login, an app, a MAC) or
// what is wrong with the line. what names the records in the error about
// a repeated key ("login", "app", "the phone"). The first error is
// returned, as "line N: ...".
func Read(r io.Reader, what string, record func(line string) (key string, err error)) error {
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := record(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[key]; dup {
			return fmt.Errorf("line %d: %s %q listed twice (first on line %d)", n, what, key, first)
		}
		seen[key] = n
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the file: %w", err)
	}
	return nil
}
