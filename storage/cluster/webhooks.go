package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/presenced/presenced/changelog/change"
)

// Webhooks share webhooks between the nodes of a cluster: their
// definitions and cursors in key-value buckets, and a lease per webhook,
// so that one node at a time delivers each, in order, from the cursor the
// last one stored; when that node dies its lease expires (WebhookLeaseTTL)
// and another node takes the webhook over. It implements webhook.Store
// (reading the cluster's change log) and webhook.Shared.
type Webhooks struct {
	configs, cursors, leases jetstream.KeyValue
	log                      *Log
	node                     string
}

// The webhooks' buckets, and how long a webhook's lease outlives its node.
const (
	WebhooksBucket       = "presenced_webhooks"
	WebhookCursorsBucket = "presenced_webhook_cursors"
	WebhookLeasesBucket  = "presenced_webhook_leases"
	WebhookLeaseTTL      = 10 * time.Second
)

// OpenWebhooks opens (creating or updating) the webhooks' buckets with
// replicas copies; webhooks read log.
func (c *Conn) OpenWebhooks(ctx context.Context, replicas int, node string, log *Log) (*Webhooks, error) {
	open := func(name, desc string, ttl time.Duration) (jetstream.KeyValue, error) {
		kv, err := ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
			return c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: desc,
				History: 1, Replicas: replicas, Storage: jetstream.FileStorage, TTL: ttl})
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: opening the %s bucket: %w", name, err)
		}
		return kv, nil
	}
	w := &Webhooks{log: log, node: node}
	var err error
	if w.configs, err = open(WebhooksBucket, "presenced: webhooks", 0); err != nil {
		return nil, err
	}
	if w.cursors, err = open(WebhookCursorsBucket, "presenced: the last event each webhook delivered", 0); err != nil {
		return nil, err
	}
	if w.leases, err = open(WebhookLeasesBucket, "presenced: which node delivers each webhook", WebhookLeaseTTL); err != nil {
		return nil, err
	}
	return w, nil
}

// Webhooks returns every webhook's definition and cursor (webhook.Store).
func (w *Webhooks) Webhooks(ctx context.Context) (map[string][]byte, map[string]uint64, error) {
	configs := map[string][]byte{}
	cursors := map[string]uint64{}
	lister, err := w.configs.ListKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: listing webhooks: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for id := range lister.Keys() {
		e, err := w.configs.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: reading webhook %s: %w", id, err)
		}
		configs[id] = e.Value()
		if cursors[id], err = w.Cursor(ctx, id); err != nil {
			return nil, nil, err
		}
	}
	return configs, cursors, nil
}

// PutWebhook stores a webhook's definition (webhook.Store).
func (w *Webhooks) PutWebhook(ctx context.Context, id string, config []byte) error {
	if _, err := w.configs.Put(ctx, id, config); err != nil {
		return fmt.Errorf("cluster: storing webhook %s: %w", id, err)
	}
	return nil
}

// DeleteWebhook forgets a webhook and its cursor (webhook.Store).
func (w *Webhooks) DeleteWebhook(ctx context.Context, id string) error {
	if err := w.configs.Delete(ctx, id); err != nil {
		return fmt.Errorf("cluster: deleting webhook %s: %w", id, err)
	}
	if err := w.cursors.Delete(ctx, id); err != nil {
		return fmt.Errorf("cluster: deleting the cursor of webhook %s: %w", id, err)
	}
	return nil
}

// SetWebhookCursors stores cursors (webhook.Store).
func (w *Webhooks) SetWebhookCursors(ctx context.Context, cursors map[string]uint64) error {
	for id, c := range cursors {
		if _, err := w.cursors.Put(ctx, id, []byte(strconv.FormatUint(c, 10))); err != nil {
			return fmt.Errorf("cluster: storing the cursor of webhook %s: %w", id, err)
		}
	}
	return nil
}

// Cursor returns the last event a webhook delivered, as stored
// (webhook.Shared).
func (w *Webhooks) Cursor(ctx context.Context, id string) (uint64, error) {
	e, err := w.cursors.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: reading the cursor of webhook %s: %w", id, err)
	}
	c, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cluster: the cursor of webhook %s: %w", id, err)
	}
	return c, nil
}

// LogFloor is the number before the first change the cluster's log
// keeps: it drops its oldest itself, PRESENCED_LOG_RETENTION kept
// (webhook.Store).
func (w *Webhooks) LogFloor(ctx context.Context) (uint64, error) {
	_, floor, err := w.log.bounds(ctx)
	return floor, err
}

// ReadLog reads the cluster's change log (webhook.Store).
func (w *Webhooks) ReadLog(ctx context.Context, after uint64, limit int) ([]change.Entry, error) {
	return w.log.ReadLog(ctx, after, limit)
}

// TrimLog does nothing: the stream drops its oldest changes itself
// (webhook.Store).
func (w *Webhooks) TrimLog(context.Context, uint64) error { return nil }

// WatchWebhooks calls changed with every webhook's definition, the
// existing ones first, then as nodes create (config) and delete them
// (nil), until ctx ends (webhook.Shared).
func (w *Webhooks) WatchWebhooks(ctx context.Context, changed func(id string, config []byte)) error {
	return watchAll(ctx, w.configs, func(e jetstream.KeyValueEntry) {
		if e.Operation() == jetstream.KeyValuePut {
			changed(e.Key(), e.Value())
		} else {
			changed(e.Key(), nil)
		}
	})
}

// Deliver waits until this node holds the webhook's lease, and keeps it
// until ctx ends (then it is given back) or it is lost (the cluster out
// of reach longer than the lease lasts): lost is closed then
// (webhook.Shared).
func (w *Webhooks) Deliver(ctx context.Context, id string) (<-chan struct{}, error) {
	var rev uint64
	for {
		r, err := w.leases.Create(ctx, id, []byte(w.node))
		if err == nil {
			rev = r
			break
		}
		// Held by another node, or the cluster not answering: tried
		// again until ctx ends.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(WebhookLeaseTTL / 10):
		}
	}
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		t := time.NewTicker(WebhookLeaseTTL / 3)
		defer t.Stop()
		held := time.Now()
		for {
			select {
			case <-ctx.Done():
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = w.leases.Delete(dctx, id, jetstream.LastRevision(rev))
				cancel()
				return
			case <-t.C:
			}
			uctx, cancel := context.WithTimeout(ctx, WebhookLeaseTTL/3)
			r, err := w.leases.Update(uctx, id, []byte(w.node), rev)
			cancel()
			switch {
			case err == nil:
				rev, held = r, time.Now()
			case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongSequence(err):
				return // expired and taken, or gone
			case time.Since(held) > WebhookLeaseTTL*2/3:
				return // could not renew in time: another node may take it now
			}
		}
	}()
	return lost, nil
}

// Holder returns the node that delivers a webhook ("" when none does now)
// (webhook.Shared).
func (w *Webhooks) Holder(ctx context.Context, id string) (string, error) {
	e, err := w.leases.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: reading who delivers webhook %s: %w", id, err)
	}
	return string(e.Value()), nil
}
