package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	if got := Clip("short"); got != "short" {
		t.Fatal(got)
	}
	long := strings.Repeat("x", 47) + "日本語"
	got := Clip(long)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "...") || len(got) > Max+3 {
		t.Fatalf("%q", got)
	}
}
