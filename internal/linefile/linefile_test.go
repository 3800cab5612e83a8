package linefile

import (
	"errors"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: the records read, or the error
	}{
		{"a:1\n\n  # a comment\n b:2 \n", "a:1|b:2"},
		{"", ""},
		{"a:1\nbad\n", "line 2: no colon"},
		{"a:1\n# x\na:2\n", `line 3: app "a" listed twice (first on line 1)`},
	} {
		var got []string
		err := Read(strings.NewReader(c.in), "app", func(line string) (string, error) {
			key, _, ok := strings.Cut(line, ":")
			if !ok {
				return "", errors.New("no colon")
			}
			got = append(got, line)
			return key, nil
		})
		if err != nil {
			if err.Error() != c.want {
				t.Errorf("%q: %v, want %s", c.in, err, c.want)
			}
			continue
		}
		if strings.Join(got, "|") != c.want {
			t.Errorf("%q: read %q, want %s", c.in, got, c.want)
		}
	}
}
