package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/presenced/presenced/watch"
)

var errIdle = errors.New("idle")

// nextWithin waits for the subscriber's next events for at most d; errIdle
// when none came.
func nextWithin(ctx context.Context, sub *watch.Sub, d time.Duration) ([]*watch.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	evs, err := sub.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, errIdle
	}
	return evs, err
}
