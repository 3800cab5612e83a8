package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodesBucket holds each presenced node's card, put again every
// NodeEvery; a card not renewed expires after NodeTTL (its node died or
// was cut off), so the list is who is there now.
const (
	NodesBucket = "presenced_nodes"
	NodeEvery   = 5 * time.Second
	NodeTTL     = 3 * NodeEvery
)

// NodeCard is what a node says of itself to the others: /readyz and the
// board list them.
type NodeCard struct {
	Node string `json:"node"`
	Site string `json:"site,omitempty"`
	// NATS is the server the node is on.
	NATS string `json:"nats"`
	// Lag is how many changes of the log the node had yet to read.
	Lag uint64 `json:"lag"`
	// Webhooks are the webhooks it delivers.
	Webhooks []string `json:"webhooks"`
	// Version is presenced's version there.
	Version string `json:"version"`
	// At is when the node wrote this card.
	At time.Time `json:"at"`
}

// Nodes is the cluster's list of nodes.
type Nodes struct{ kv jetstream.KeyValue }

// OpenNodes opens (creating or updating) the nodes bucket.
func (c *Conn) OpenNodes(ctx context.Context, replicas int) (*Nodes, error) {
	kv, err := ensure(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: NodesBucket, Description: "presenced: the nodes of the cluster, each renewing its card",
			History: 1, Replicas: replicas, Storage: jetstream.FileStorage, TTL: NodeTTL,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the nodes bucket: %w", err)
	}
	return &Nodes{kv: kv}, nil
}

// Announce puts a node's card.
func (n *Nodes) Announce(ctx context.Context, card NodeCard) error {
	b, err := json.Marshal(card)
	if err != nil {
		return err
	}
	if _, err := n.kv.Put(ctx, card.Node, b); err != nil {
		return fmt.Errorf("cluster: announcing node %s: %w", card.Node, err)
	}
	return nil
}

// Leave removes a node's card (a node that stops).
func (n *Nodes) Leave(ctx context.Context, node string) error {
	if err := n.kv.Delete(ctx, node); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: removing node %s: %w", node, err)
	}
	return nil
}

// List returns the cards of the nodes there now, by name.
func (n *Nodes) List(ctx context.Context) ([]NodeCard, error) {
	lister, err := n.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: listing nodes: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	cards := []NodeCard{}
	for k := range lister.Keys() {
		e, err := n.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // left or expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("cluster: reading node %s: %w", k, err)
		}
		var c NodeCard
		if err := json.Unmarshal(e.Value(), &c); err != nil || c.Node != k {
			continue // not a presenced card: not shown
		}
		cards = append(cards, c)
	}
	slices.SortFunc(cards, func(a, b NodeCard) int { return strings.Compare(a.Node, b.Node) })
	return cards, nil
}
