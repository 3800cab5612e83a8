package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRetry(t *testing.T) {
	other := errors.New("stream not found")
	tests := []struct {
		name  string
		errs  []error // what each call returns, then nil
		calls int
		want  error
	}{
		{"first time", nil, 1, nil},
		{"no responders twice", []error{nats.ErrNoResponders, fmt.Errorf("wrapped: %w", nats.ErrNoResponders)}, 3, nil},
		{"a timeout", []error{nats.ErrTimeout}, 2, nil},
		{"not transient", []error{other, nil}, 1, other},
		{"transient then not", []error{nats.ErrNoResponders, other}, 2, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				err := retry(t.Context(), func(context.Context) error {
					calls++
					if calls <= len(tt.errs) {
						return tt.errs[calls-1]
					}
					return nil
				})
				if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if calls != tt.calls {
					t.Fatalf("%d calls, want %d", calls, tt.calls)
				}
			})
		})
	}
}

// A read that never stops failing transiently gives up when its
// context has no deadline, after retryFor, with the last error.
func TestRetryGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		err := retry(context.Background(), func(context.Context) error { return nats.ErrNoResponders })
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d < retryFor || d > retryFor+2*time.Second {
			t.Fatalf("gave up after %v, want about %v", d, retryFor)
		}
	})
}
