package cluster

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/presenced/presenced/changelog/change"
)

// The change log of a cluster: one JetStream stream, whose sequence is
// the number of every change, the same on every node, so that a watcher
// resumes on any node with an id another node gave it. Each hint and
// provider has a subject of its own (presenced.log.<key, base64url>).
// The stream keeps the last N changes (PRESENCED_LOG_RETENTION), as the
// single node's log does; a resume reaches back that far (else the hub
// gives a fresh snapshot).
//
// The latest state of everything (a snapshot) must outlive that window:
// a hint that has not changed for a million changes still has a state. A
// second stream, PRESENCED_LATEST, sources the log and keeps one message
// per subject, the latest: JetStream copies each change into it, in
// order, on the servers, so there is no moment where a node has written
// one and not the other (a node killed between two writes of its own
// would leave them apart). Copying lags a little; a snapshot is the
// latest stream's content overlaid with the log's changes after the last
// it copied (LogState).
//
// It implements watch.Log and watch.Stream; its entries are change.Entry,
// written here as the unnamed struct so that this package does not
// import watch.

// LogStream is the stream's name, LatestStream the latest entries';
// logSubjects the log's subjects. RevHeader holds an entry's Rev (the
// revision of the record it shows; absent: none): the hub refuses to
// append a change older than its key's latest by it.
const (
	LogStream    = "PRESENCED_LOG"
	LatestStream = "PRESENCED_LATEST"
	logPrefix    = "presenced.log."
	logSubjects  = logPrefix + ">"
	RevHeader    = "Presenced-Rev"
)

// revOf reads an entry's Rev from its headers (0: none, or unreadable:
// an entry without one is ordered as before revisions were written).
func revOf(h nats.Header) uint64 {
	rev, _ := strconv.ParseUint(h.Get(RevHeader), 10, 64)
	return rev
}

// oneShotResets bounds how often an ordered consumer is made again after
// it lost its server. The library's default is for ever, and a reset
// ignores every context: a read on a connection that closed (its node
// cut off, or stopping) then never returned, and held up the node's
// shutdown (seen in TestWebhookTakenOver). Bounded, the read fails, and
// its caller retries or gives up as for any other error.
const oneShotResets = 2

// Log is the cluster's change log.
type Log struct {
	js     jetstream.JetStream
	conn   *Conn
	stream jetstream.Stream
	latest jetstream.Stream
}

// OpenLog opens (creating or updating) the change log's stream with
// replicas copies, keeping the last retention changes, and the stream of
// the latest entry of each hint and provider.
func (c *Conn) OpenLog(ctx context.Context, replicas int, retention int64) (*Log, error) {
	s, err := ensure(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: LogStream, Description: "presenced: the change log of hints and presence",
			Subjects: []string{logSubjects}, Storage: jetstream.FileStorage, Replicas: replicas,
			// -1: no limit per subject (64 were kept before, and a webhook
			// more than 64 changes of one user behind got a gap).
			MaxMsgs: retention, MaxMsgsPerSubject: -1, Discard: jetstream.DiscardOld, Duplicates: 2 * time.Minute,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the change log: %w", err)
	}
	latest, err := ensure(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: LatestStream, Description: "presenced: the latest entry of each hint and provider in the change log",
			Storage: jetstream.FileStorage, Replicas: replicas, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardOld,
			Sources: []*jetstream.StreamSource{{Name: LogStream}},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the change log's latest entries: %w", err)
	}
	l := &Log{js: c.js, conn: c, stream: s, latest: latest}
	if err := l.waitCopying(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// waitCopying waits until the latest stream has heard from the log: the
// servers set up the copy some seconds after the stream is made (longer
// when the cluster has just formed), and a burst of changes larger than
// the log keeps, appended before, would never reach it.
func (l *Log) waitCopying(ctx context.Context) error {
	for {
		info, err := l.latest.Info(ctx)
		if err == nil && len(info.Sources) == 1 && info.Sources[0].Active >= 0 {
			return nil
		}
		if err != nil && !transient(err) {
			return fmt.Errorf("cluster: waiting for the change log's latest entries: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for the copy of the change log's latest entries: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func subjectOf(key string) string {
	return logPrefix + base64.RawURLEncoding.EncodeToString([]byte(key))
}

func keyOf(subject string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(subject, logPrefix))
	if err != nil || !strings.HasPrefix(subject, logPrefix) {
		return "", fmt.Errorf("cluster: %q is not a change log subject", subject)
	}
	return string(b), nil
}

// ID is the log's identity: the stream's creation time. Numbers of a
// stream deleted and made again are not the same numbers.
func (l *Log) ID(ctx context.Context) (string, error) {
	var info *jetstream.StreamInfo
	err := retry(ctx, func(ctx context.Context) (err error) {
		info, err = l.stream.Info(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("cluster: reading the change log: %w", err)
	}
	return "js" + strconv.FormatInt(info.Created.UnixNano(), 36), nil
}

// OpenLog returns the log's identity (watch.Log). A cluster's log has no
// unclean shutdown of its own to detect: what the stream acknowledged is
// replicated.
func (l *Log) OpenLog(ctx context.Context) (string, error) { return l.ID(ctx) }

// CloseLog does nothing: the stream is not this node's (watch.Log).
func (l *Log) CloseLog(context.Context) error { return nil }

// AppendLog is not used: the stream numbers changes itself
// (PublishEntries).
func (l *Log) AppendLog(context.Context, []change.Entry) error {
	return errors.New("cluster: the change log numbers its entries itself; use PublishEntries")
}

// LogState returns the last number, the number before the first
// kept, and the latest entry of every hint and provider (watch.Log).
func (l *Log) LogState(ctx context.Context) (head, floor uint64, latest []change.Entry, err error) {
	err = retry(ctx, func(ctx context.Context) error {
		var err error
		head, floor, latest, err = l.logState(ctx)
		return err
	})
	return head, floor, latest, err
}

// bounds returns the last number and the number before the first kept.
func (l *Log) bounds(ctx context.Context) (head, floor uint64, err error) {
	var info *jetstream.StreamInfo
	err = retry(ctx, func(ctx context.Context) (err error) {
		info, err = l.stream.Info(ctx)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("cluster: reading the change log: %w", err)
	}
	head = info.State.LastSeq
	if info.State.FirstSeq > 0 {
		floor = info.State.FirstSeq - 1
	}
	return head, floor, nil
}

func (l *Log) logState(ctx context.Context) (head, floor uint64, latest []change.Entry, err error) {
	head, floor, err = l.bounds(ctx)
	if err != nil {
		return 0, 0, nil, err
	}
	// The latest entries as copied so far, then the log's changes after
	// the last copied, up to the head.
	byKey := map[string]int{}
	var copied uint64
	if err := l.readAll(ctx, l.latest, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}, math.MaxInt, func(m jetstream.Msg) error {
		e, err := latestOf(m)
		if err != nil {
			return err
		}
		copied = max(copied, e.Seq)
		byKey[e.Key] = len(latest)
		latest = append(latest, e)
		return nil
	}); err != nil {
		return 0, 0, nil, fmt.Errorf("cluster: reading the change log's latest entries: %w", err)
	}
	if copied < floor {
		// Copying lags behind the log's retention (a burst of more than
		// PRESENCED_LOG_RETENTION changes within the copy's lag): what
		// lies between is not in either stream yet. The copy goes on past
		// it; the read is tried again (a transient error).
		return 0, 0, nil, fmt.Errorf("cluster: the latest entries (to %d) lag behind the change log's first kept change (%d): %w", copied, floor+1, errLatestBehind)
	}
	for copied < head {
		more, err := l.readLog(ctx, copied, 4096)
		if err != nil {
			return 0, 0, nil, err
		}
		if len(more) == 0 {
			break
		}
		for _, e := range more {
			if i, ok := byKey[e.Key]; ok {
				latest[i] = e
			} else {
				byKey[e.Key] = len(latest)
				latest = append(latest, e)
			}
			copied = e.Seq
		}
	}
	head = max(head, copied) // appended since Info
	slices.SortFunc(latest, func(a, b change.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	return head, floor, latest, nil
}

// errLatestBehind: the latest stream has not yet copied up to the log's
// first kept change.
var errLatestBehind = errors.New("copying still under way")

// streamSourceHeader is the header of a sourced message naming where it
// came from (nats-server's JSStreamSource; nats.go has no name for it).
const streamSourceHeader = "Nats-Stream-Source"

// latestOf reads an entry of the latest stream: its number is the log's,
// in the header JetStream gives a sourced message ("PRESENCED_LOG <seq>
// <filter> <transform> <subject>").
func latestOf(m jetstream.Msg) (change.Entry, error) {
	k, err := keyOf(m.Subject())
	if err != nil {
		return change.Entry{}, err
	}
	f := strings.Fields(m.Headers().Get(streamSourceHeader))
	if len(f) < 2 || f[0] != LogStream {
		return change.Entry{}, fmt.Errorf("cluster: a latest entry of %s without its number in the log (%q)", k, m.Headers().Get(streamSourceHeader))
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || seq == 0 {
		return change.Entry{}, fmt.Errorf("cluster: a latest entry of %s with a bad number in the log (%q)", k, f[1])
	}
	return change.Entry{Seq: seq, Key: k, Value: m.Data(), Rev: revOf(m.Headers())}, nil
}

// readAll reads, with an ordered consumer made for it and deleted after,
// what the stream had for cfg when the consumer was made, at most limit.
func (l *Log) readAll(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig, limit int, f func(jetstream.Msg) error) error {
	cfg.MaxResetAttempts, cfg.InactiveThreshold = oneShotResets, oneShotIdle
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	defer l.drop(s, cons)
	return fetchPending(ctx, cons, limit, f)
}

// oneShotIdle is how long the server keeps a consumer made for one read
// that was not deleted after it (its reader died).
const oneShotIdle = 10 * time.Second

// drop deletes a consumer made for one read. Left to expire (ordered
// consumers idle for minutes by default), a busy reader's piled up: a
// webhook reads every 256 changes, and after a few thousand the stream
// refused new consumers ("maximum consumers limit reached"), which
// stalled the webhook (seen in TestClusterKill9).
func (l *Log) drop(s jetstream.Stream, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.DeleteConsumer(ctx, info.Name)
}

// fetchPending reads, from a consumer just made, the messages it had
// pending when it was made (its creation says how many), at most limit,
// waiting for each batch as long as ctx allows. FetchNoWait, used before,
// returns only what the server has at hand at that instant, and for a
// consumer just made that is often nothing yet: readers stopped short (a
// webhook stalled behind a quiet log; a node could start from part of
// the latest state).
func fetchPending(ctx context.Context, cons jetstream.Consumer, limit int, f func(jetstream.Msg) error) error {
	want := limit
	if info := cons.CachedInfo(); info != nil && info.NumPending < uint64(limit) {
		want = int(info.NumPending)
	}
	for got := 0; got < want; {
		batch, err := cons.Fetch(min(want-got, 1024), jetstream.FetchContext(ctx))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := f(m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && n == 0 {
			return err
		}
		if n == 0 {
			return ctx.Err() // nothing came: the time is up, or the messages are gone
		}
		got += n
	}
	return nil
}

func entryOf(m jetstream.Msg) (change.Entry, error) {
	md, err := m.Metadata()
	if err != nil {
		return change.Entry{}, fmt.Errorf("cluster: a change log message without metadata: %w", err)
	}
	k, err := keyOf(m.Subject())
	if err != nil {
		return change.Entry{}, err
	}
	return change.Entry{Seq: md.Sequence.Stream, Key: k, Value: m.Data(), Rev: revOf(m.Headers())}, nil
}

// ReadLog returns up to limit entries after a number, in order; holes
// (changes the stream dropped) are left out, and the reader sees them by
// their numbers (watch.Log).
func (l *Log) ReadLog(ctx context.Context, after uint64, limit int) (out []change.Entry, err error) {
	err = retry(ctx, func(ctx context.Context) error {
		out, err = l.readLog(ctx, after, limit)
		return err
	})
	return out, err
}

func (l *Log) readLog(ctx context.Context, after uint64, limit int) ([]change.Entry, error) {
	var out []change.Entry
	err := l.readAll(ctx, l.stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1}, limit, func(m jetstream.Msg) error {
		e, err := entryOf(m)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the change log: %w", err)
	}
	return out, nil
}

// PublishEntries appends entries and returns the numbers the stream gave
// them, in order (watch.Stream). Each entry's Seq is the number of the
// latest entry of its key the caller knows (0: none), and the stream
// takes the entry only if that is still its key's latest (the
// Nats-Expected-Last-Subject-Sequence header): two nodes that saw the
// same change cannot both append it. For an entry refused so, seqs[i] is
// 0 and stale[i] the key's latest entry now; the caller decides (the same
// value: drop it; another: try again after it). A key appears at most
// once in one call. Each entry carries a message id, so that a retry
// after a lost acknowledgement is not appended twice.
func (l *Log) PublishEntries(ctx context.Context, ids []string, entries []change.Entry) (seqs []uint64, stale []*change.Entry, err error) {
	futures := make([]jetstream.PubAckFuture, len(entries))
	for i, e := range entries {
		msg := &nats.Msg{Subject: subjectOf(e.Key), Data: e.Value, Header: nats.Header{}}
		if ids != nil {
			msg.Header.Set(jetstream.MsgIDHeader, ids[i])
		}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(e.Seq, 10))
		if e.Rev != 0 {
			msg.Header.Set(RevHeader, strconv.FormatUint(e.Rev, 10))
		}
		f, err := l.js.PublishMsgAsync(msg)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: appending to the change log: %w", err)
		}
		futures[i] = f
	}
	seqs = make([]uint64, len(entries))
	stale = make([]*change.Entry, len(entries))
	var refused []int
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			seqs[i] = ack.Sequence
		case err := <-f.Err():
			if !isWrongSequence(err) {
				return nil, nil, fmt.Errorf("cluster: appending to the change log: %w", err)
			}
			refused = append(refused, i)
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("cluster: appending to the change log: %w", ctx.Err())
		}
	}
	for _, i := range refused {
		var m *jetstream.RawStreamMsg
		err := retry(ctx, func(ctx context.Context) (err error) {
			m, err = l.stream.GetLastMsgForSubject(ctx, subjectOf(entries[i].Key))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			stale[i] = &change.Entry{Key: entries[i].Key} // none left (the stream was purged)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: reading the change log's latest entry of %s: %w", entries[i].Key, err)
		}
		stale[i] = &change.Entry{Seq: m.Sequence, Key: entries[i].Key, Value: m.Data, Rev: revOf(m.Header)}
	}
	return seqs, stale, nil
}

// Follow calls deliver with every entry after a number, in order, as the
// stream gets them, until ctx ends (watch.Stream). Each is delivered as
// soon as it arrives: a hook waits until its change is read back (a
// batched fetch, which waits for its batch or a timeout, made every
// cluster hook take a second). An error the ordered consumer cannot get
// past (it could not be made again) ends Follow; the caller follows anew
// from what it has delivered.
func (l *Log) Follow(ctx context.Context, after uint64, deliver func([]change.Entry)) error {
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1, MaxResetAttempts: oneShotResets})
	if err != nil {
		return fmt.Errorf("cluster: following the change log: %w", err)
	}
	// Taken again from where it is when the connection is made again: an
	// ordered consumer that lost its server finds out only when its
	// heartbeats have been missing for a while (a node back from a cut
	// served its watchers nothing new for seconds; seen in CI).
	reconnected := l.conn.Reconnected()
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("cluster: following the change log: %w", err)
	}
	defer it.Stop()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-reconnected:
			it.Stop()
		case <-stopped:
		}
	}()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			select {
			case <-reconnected:
				return errors.New("cluster: following the change log again, from where it was, after NATS reconnected")
			default:
			}
			return fmt.Errorf("cluster: following the change log: %w", err)
		}
		if e, err := entryOf(m); err == nil { // not presenced's: skipped
			deliver([]change.Entry{e})
		}
	}
}

// LogStatus is the change log's state in the cluster, for /readyz.
type LogStatus struct {
	Last     uint64          `json:"last"`   // the number of the last change
	Leader   string          `json:"leader"` // the NATS server that orders appends
	Replicas []ReplicaStatus `json:"replicas"`
}

// ReplicaStatus is one NATS server's copy of the change log.
type ReplicaStatus struct {
	Name    string `json:"name"`
	Current bool   `json:"current"` // caught up with the leader
	Lag     uint64 `json:"lag"`     // operations behind it
}

// Status returns the change log's state.
func (l *Log) Status(ctx context.Context) (LogStatus, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return LogStatus{}, fmt.Errorf("cluster: reading the change log: %w", err)
	}
	st := LogStatus{Last: info.State.LastSeq, Replicas: []ReplicaStatus{}}
	if c := info.Cluster; c != nil {
		st.Leader = c.Leader
		for _, r := range c.Replicas {
			st.Replicas = append(st.Replicas, ReplicaStatus{Name: r.Name, Current: r.Current, Lag: r.Lag})
		}
	}
	return st, nil
}
