package hints

import (
	"strings"
	"testing"
)

func TestParseHintRef(t *testing.T) {
	for in, want := range map[string][2]string{"1001": {"1001", "default"}, "1001@internal": {"1001", "internal"}, "*76@feature-codes": {"*76", "feature-codes"}} {
		e, c, err := ParseHintRef(in)
		if err != nil || e != want[0] || c != want[1] {
			t.Errorf("ParseHintRef(%q) = %q, %q, %v", in, e, c, err)
		}
	}
	for _, in := range []string{"", "@internal", "1001@", "10 01", "1001@a,b", "1001)", strings.Repeat("1", 81)} {
		if _, _, err := ParseHintRef(in); err == nil {
			t.Errorf("ParseHintRef(%q) accepted", in)
		}
	}
}
