package graphsim

import (
	"math/rand/v2"
	"sort"
	"time"
)

// Replica lag (docs/design.md, The real directory). Microsoft Entra is eventually consistent:
// a successful write is not guaranteed to be visible to the next read, and
// an app-only caller has no session affinity, so each read may be answered
// by a different replica. Under a replica lag d (Options.ReplicaLag,
// SetReplicaLag) every membership read
//
//	POST /users/{id}/checkMemberGroups                                       (nested groups as of then)
//	GET  /groups/{id}/members                                                (every page on its own)
//	GET  /identityGovernance/privilegedAccess/group/assignmentScheduleInstances
//
// answers with the tenant's memberships and PIM assignments as they were at
// a moment drawn at random, independently for each read, from (now-d, now]
// on the Sim's clock (Options.Now): two reads in a row may go backwards in
// time. A change made at t is seen by every read from t+d on.
//
// Writes and their answers (members/$ref 204 / 400 "already exist", remove
// 204 / 404, PIM assignmentScheduleRequests, revokeSignInSessions), GET
// /users and /groups/{id}, and the test accessors (IsDirectMember, Members,
// PIMAssignments, ...) always see the truth.
//
// To answer "as of t" the Sim keeps a log of the membership and PIM changes
// of the last d (oldest first, times never decreasing) and undoes, from the
// current state, those made after t. Entries older than d are dropped: no
// read looks that far back. Changes made while the lag is 0, and the seed
// tenant, are visible to every read.

// edge is one direct membership: member in group (lower-case ids).
type edge struct{ group, member string }

// change is one entry of the replica log: at at, either a membership edge
// changed (it was wasMember before), or (pim) the PIM assignment of pimKey
// changed (it was pimBefore before; nil: none).
type change struct {
	at        time.Time
	pim       bool
	edge      edge
	wasMember bool
	pimKey    pimKey
	pimBefore *PIMAssignment
}

// replicas is the Sim's replica-lag state; every method expects s.mu held.
type replicas struct {
	lag time.Duration
	rng *rand.Rand
	log []change
}

func newRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// SetReplicaLag makes membership reads lag by up to d (see the top of
// lag.go), drawing each read's moment from a random source seeded with seed
// (the same seed and the same sequence of calls give the same moments).
// Changes made before the call are visible to every read. d <= 0 turns the
// lag off: every read sees the truth again.
func (s *Sim) SetReplicaLag(d time.Duration, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setReplicaLagLocked(d, seed)
}

func (s *Sim) setReplicaLagLocked(d time.Duration, seed int64) {
	if d <= 0 {
		s.rep = replicas{}
		return
	}
	s.rep.lag = d
	s.rep.rng = newRNG(seed)
	s.rep.prune(s.opts.Now())
}

// ReplicaLag is the current replica lag (0: reads see the truth).
func (s *Sim) ReplicaLag() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rep.lag
}

// record appends c to the log (when lagging), keeping times in order and
// none after now (a change dated later, such as ExpirePIM ahead of the
// clock, counts as made now).
func (r *replicas) record(c change, now time.Time) {
	if r.lag <= 0 {
		return
	}
	if c.at.After(now) {
		c.at = now
	}
	if n := len(r.log); n > 0 && c.at.Before(r.log[n-1].at) {
		c.at = r.log[n-1].at
	}
	r.log = append(r.log, c)
	r.prune(now)
}

// prune drops the entries every read already sees (at or before now-lag).
func (r *replicas) prune(now time.Time) {
	cut := now.Add(-r.lag)
	i := sort.Search(len(r.log), func(i int) bool { return r.log[i].at.After(cut) })
	if i > 0 {
		r.log = append(r.log[:0:0], r.log[i:]...)
	}
}

// moment draws the moment one read sees: a time in (now-lag, now]. ok is
// false when there is no lag.
func (r *replicas) moment(now time.Time) (time.Time, bool) {
	if r.lag <= 0 {
		return now, false
	}
	r.prune(now)
	return now.Add(-time.Duration(r.rng.Float64() * float64(r.lag))), true
}

// undoAfter returns, for every membership and PIM assignment changed after
// t, what it was at t.
func (r *replicas) undoAfter(t time.Time) (map[edge]bool, map[pimKey]*PIMAssignment) {
	var members map[edge]bool
	var pims map[pimKey]*PIMAssignment
	for i := len(r.log) - 1; i >= 0 && r.log[i].at.After(t); i-- {
		c := r.log[i]
		if c.pim {
			if pims == nil {
				pims = map[pimKey]*PIMAssignment{}
			}
			pims[c.pimKey] = c.pimBefore
			continue
		}
		if members == nil {
			members = map[edge]bool{}
		}
		members[c.edge] = c.wasMember
	}
	return members, pims
}

// logMember records that member's membership of group changed at at (it was
// was before).
func (s *Sim) logMember(at time.Time, group, member string, was bool) {
	s.rep.record(change{at: at, edge: edge{group, member}, wasMember: was}, s.opts.Now())
}

// logPIM records that the PIM assignment of k changed at at; before is what
// it was (nil: none).
func (s *Sim) logPIM(at time.Time, k pimKey, before *PIMAssignment) {
	if before != nil {
		cp := *before
		before = &cp
	}
	s.rep.record(change{at: at, pim: true, pimKey: k, pimBefore: before}, s.opts.Now())
}

// readView is the direct-membership relation one membership read sees: the
// truth, or under a replica lag the state at a random recent moment.
func (s *Sim) readView() memberView {
	t, ok := s.rep.moment(s.opts.Now())
	if !ok {
		return s.t.truth()
	}
	undo, _ := s.rep.undoAfter(t)
	return memberView{t: &s.t, asOf: undo}
}

// readPIM is the set of PIM assignments one instances read sees (the map
// must not be changed).
func (s *Sim) readPIM() map[pimKey]*PIMAssignment {
	t, ok := s.rep.moment(s.opts.Now())
	if !ok {
		return s.pim
	}
	_, undo := s.rep.undoAfter(t)
	if len(undo) == 0 {
		return s.pim
	}
	out := make(map[pimKey]*PIMAssignment, len(s.pim))
	for k, a := range s.pim {
		out[k] = a
	}
	for k, a := range undo {
		if a == nil {
			delete(out, k)
		} else {
			out[k] = a
		}
	}
	return out
}
