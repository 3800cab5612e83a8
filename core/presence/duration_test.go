package presence

import (
	"testing"
	"time"
)

func TestParseFor(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90", 90 * time.Second, true}, {"45s", 45 * time.Second, true}, {"30m", 30 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true}, {"744h", 744 * time.Hour, true},
		{"0", 0, false}, {"-5m", 0, false}, {"745h", 0, false}, {"soon", 0, false}, {"1d", 0, false}, {"500ms", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseFor(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFor(%q) = %v, %v", tt.in, got, err)
		}
	}
}
