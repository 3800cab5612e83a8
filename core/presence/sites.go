package presence

import (
	"context"
	"time"
)

// Presence is global in a cluster, and each site's Asterisk holds it: a
// presence set at one site is written into every other site's Asterisk,
// and one set in a site's Asterisk outside presenced (a phone's key, the
// CLI) becomes the cluster's. Record.Written[site] is what tells the two
// directions apart, under the user's lease, whatever node looks:
//
//   - Asterisk holds Current: nothing to do.
//   - Asterisk holds Written[site] (what presenced last saw there), and
//     Current differs: the record moved on elsewhere; this site's Asterisk
//     is written (converge). A site that never held the user's presence
//     (no Written) converges too: the cluster is the truth for a site
//     that joins it.
//   - Asterisk holds something else: it was changed there, outside
//     presenced; that is the presence now (as alone, see mutate).
//
// Because the rule compares values under the lease rather than trusting
// events, sites never echo each other into a loop: once every site's
// Asterisk holds Current, every look finds nothing to do, and an event
// seen late (AMI's echo of another node's write) finds the same.
// The one race left is a user changed in two places within the same
// moment (a phone at one site, a hook at another): one of them wins,
// both sites then show it, and the restore memory has the other.

// side is what a look at a site's Asterisk found.
type side int

const (
	agree           side = iota // Asterisk holds the record's presence
	asteriskChanged             // set in Asterisk outside presenced
	clusterChanged              // set elsewhere in the cluster; Asterisk to follow
)

// side tells which changed when Asterisk holds cur and the record rec
// (loaded: the record exists).
func (s *Service) side(rec Record, cur Value, loaded bool) side {
	if cur.Same(rec.Current) {
		return agree
	}
	if s.cfg.Shared == nil || !loaded {
		return asteriskChanged
	}
	if w, ok := rec.Written[s.cfg.Site]; ok && !w.Same(cur) {
		return asteriskChanged
	}
	return clusterChanged
}

// reconcileWorkers bounds the users reconciled at once on one node.
const reconcileWorkers = 4

// Reconcile, in a cluster, brings this site's Asterisk and the cluster's
// record of user together (see the rule above), in the background: a
// user queued again before its turn is reconciled once. Without a
// Background writer (no AMI) it does nothing.
func (s *Service) Reconcile(user string) {
	if s.cfg.Shared == nil || s.cfg.Background == nil || ValidateUser(user) != nil {
		return
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.queue == nil {
		s.queue = map[string]struct{}{}
		s.queueWake = make(chan struct{}, reconcileWorkers)
		for range reconcileWorkers {
			s.wg.Add(1)
			go s.reconcileWorker()
		}
	}
	s.queue[user] = struct{}{}
	select {
	case s.queueWake <- struct{}{}:
	default:
	}
}

func (s *Service) reconcileWorker() {
	defer s.wg.Done()
	for {
		s.qmu.Lock()
		var user string
		for u := range s.queue {
			user = u
			delete(s.queue, u)
			break
		}
		more := len(s.queue) > 0
		s.qmu.Unlock()
		if user == "" {
			select {
			case <-s.queueWake:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		if more {
			select { // another worker may take the next
			case s.queueWake <- struct{}{}:
			default:
			}
		}
		ctx, cancel := context.WithTimeout(s.ctx, backgroundTimeout)
		_, err := s.mutate(ctx, nil, user, nil)
		cancel()
		if err != nil && s.ctx.Err() == nil {
			if ErrorCode(err) == CodeUnavailable {
				// The cluster or Asterisk away: tried again until they are back.
				time.AfterFunc(SaveRetry, func() {
					if s.ctx.Err() == nil {
						s.Reconcile(user)
					}
				})
			}
			s.backgroundFailed(user, err)
		}
	}
}

// Changed takes a record as the cluster saved it (any node's write, seen
// by watching the cluster's records): this node's memory and timer
// follow it, so that a timed presence ends even when the node that set
// it is gone (every node arms it; the first to fire ends it under the
// lease, the others find it ended); and unless the record says this
// site's Asterisk holds its presence, the user is reconciled. rev is the
// record's revision: a record older than the one this node holds (the
// watch lagging behind this node's own write) changes nothing.
func (s *Service) Changed(user string, rec Record, rev uint64) {
	if ValidateUser(user) != nil {
		return
	}
	s.rmu.Lock()
	if rev < s.revs[user].rev {
		s.rmu.Unlock()
		return
	}
	s.recs[user] = rec
	s.known(user, rev, rec.Current)
	s.rmu.Unlock()
	s.schedule(user, rec.Current.Expires)
	if w, ok := rec.Written[s.cfg.Site]; ok && w.Same(rec.Current) && !rec.Pending {
		return
	}
	s.Reconcile(user)
}

// reconcileAll queues every user this site's Asterisk is not known to
// hold the presence of (AMI is back: what changed meanwhile at other
// sites is written, what changed here is taken).
func (s *Service) reconcileAll() {
	if s.cfg.Shared == nil || s.cfg.Background == nil {
		return
	}
	s.rmu.Lock()
	var users []string
	for u, r := range s.recs {
		if w, ok := r.Written[s.cfg.Site]; !ok || !w.Same(r.Current) || r.Pending {
			users = append(users, u)
		}
	}
	s.rmu.Unlock()
	for _, u := range users {
		s.Reconcile(u)
	}
}

// observedElsewhere: AMI showed, with nothing of presenced's expected, a
// presence of user that differs from what this node knows; in a cluster
// it may be a change made in this Asterisk (to be taken into the
// cluster's record) or the echo of another node's write at this site
// (which the record already says): reconciling tells.
func (s *Service) observedElsewhere(user string, v Value, rec Record) {
	if s.cfg.Shared == nil {
		return
	}
	if w, ok := rec.Written[s.cfg.Site]; ok && w.Same(v) {
		return // what presenced last saw here: an echo, or old news
	}
	s.Reconcile(user)
}
