package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// retryFor bounds how long a read is retried when ctx sets no deadline.
const retryFor = 30 * time.Second

// transient reports whether err is one a cluster gives for a moment and
// then not: no server answered yet (a consumer just made lives on
// another node whose interest has not reached this one; a stream whose
// leader is being elected), a request that timed out meanwhile, or the
// latest entries still being copied.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, errLatestBehind)
}

// retry runs read until it succeeds, fails with an error that is not
// transient, or ctx (at most retryFor when it has no deadline) ends; the
// last error is returned then. Only reads are retried this way: they
// change nothing, so running one twice is harmless.
func retry(ctx context.Context, read func(ctx context.Context) error) error {
	return retryEach(ctx, 0, read)
}

// retryEach is retry with each try on a deadline of its own (per, 0:
// none): a request sent while a stream elects a new leader (its leader's
// server died) is never answered, and is asked again after per instead
// of waiting for ctx.
func retryEach(ctx context.Context, per time.Duration, op func(ctx context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, retryFor)
		defer cancel()
	}
	wait := 50 * time.Millisecond
	for {
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if per > 0 {
			tctx, cancel = context.WithTimeout(ctx, per)
		}
		err := op(tctx)
		cancel()
		if err == nil || !(transient(err) || (per > 0 && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// createTry bounds one request that creates (or updates) a bucket or a
// stream. Nodes starting together create the same ones at once, and
// JetStream then answers none of the requests that met (seen: three
// nodes in step, every bucket costing each the whole deadline, 15 s then:
// two minutes to start a three-node cluster, sometimes more). The
// request is idempotent (the same configuration), so it is sent again,
// after a random pause that takes the nodes out of step.
const createTry = 1500 * time.Millisecond

// ensure creates or updates a bucket or a stream with create, sending
// the request again when no answer comes within createTry.
func ensure[T any](ctx context.Context, create func(ctx context.Context) (T, error)) (T, error) {
	var out T
	tries := 0
	err := retryEach(ctx, createTry, func(ctx context.Context) (err error) {
		if tries++; tries > 1 {
			select {
			case <-time.After(rand.N(time.Second)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		out, err = create(ctx)
		return err
	})
	return out, err
}

// bounded returns f's result, or ctx's error as soon as ctx ends, so that
// an operation keeps its caller's deadline. nats.go holds its
// connection's lock while it dials a server again, for up to its connect
// timeout each time, and a request waits for that lock whatever its
// context says: during a silent cut a hook's lease was seen held 1.9 s
// past its deadline. f goes on meanwhile (with the same context, it ends
// once the lock is free); a result that comes after the caller gave up
// goes to late (nil: dropped). what names the operation in the error.
func bounded[T any](ctx context.Context, what string, f func() (T, error), late func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if late != nil {
			go func() {
				if r := <-done; r.err == nil {
					late(r.v)
				}
			}()
		}
		var zero T
		return zero, fmt.Errorf("cluster: %s: %w", what, ctx.Err())
	}
}
