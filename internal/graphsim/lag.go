package graphsim

import (
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
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
// of the last d (simkit.Replicas) and undoes, from the current state, those
// made after t. Changes made while the lag is 0, and the seed tenant, are
// visible to every read.

// edge is one direct membership: member in group (lower-case ids).
type edge struct{ group, member string }

// change is one entry of the replica log: either a membership edge changed
// (it was wasMember before), or (pim) the PIM assignment of pimKey changed
// (it was pimBefore before; nil: none).
type change struct {
	pim       bool
	edge      edge
	wasMember bool
	pimKey    pimKey
	pimBefore *PIMAssignment
}

// replicas is the Sim's replica-lag state; guarded by s.mu.
type replicas = simkit.Replicas[change]

// SetReplicaLag makes membership reads lag by up to d (see the top of
// lag.go), drawing each read's moment from a random source seeded with seed
// (the same seed and the same sequence of calls give the same moments).
// Changes made before the call while there was no lag are visible to every
// read. d <= 0 turns the lag off: every read sees the truth again.
func (s *Sim) SetReplicaLag(d time.Duration, seed int64) {
	s.locked(func() { s.rep.Set(d, seed, s.opts.Now()) })
}

// ReplicaLag is the current replica lag (0: reads see the truth).
func (s *Sim) ReplicaLag() (d time.Duration) {
	s.locked(func() { d = s.rep.Lag() })
	return d
}

// undoAfter returns, for every membership and PIM assignment changed after
// t, what it was at t.
func (s *Sim) undoAfter(t time.Time) (map[edge]bool, map[pimKey]*PIMAssignment) {
	var members map[edge]bool
	var pims map[pimKey]*PIMAssignment
	for c := range s.rep.After(t) {
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
	s.rep.Record(at, s.opts.Now(), change{edge: edge{group, member}, wasMember: was})
}

// logPIM records that the PIM assignment of k changed at at; before is what
// it was (nil: none).
func (s *Sim) logPIM(at time.Time, k pimKey, before *PIMAssignment) {
	if before != nil {
		cp := *before
		before = &cp
	}
	s.rep.Record(at, s.opts.Now(), change{pim: true, pimKey: k, pimBefore: before})
}

// readView is the direct-membership relation one membership read sees: the
// truth, or under a replica lag the state at a random recent moment.
func (s *Sim) readView() memberView {
	t, ok := s.rep.Moment(s.opts.Now())
	if !ok {
		return s.t.truth()
	}
	undo, _ := s.undoAfter(t)
	return memberView{t: &s.t, asOf: undo}
}

// readPIM is the set of PIM assignments one instances read sees (the map
// must not be changed).
func (s *Sim) readPIM() map[pimKey]*PIMAssignment {
	t, ok := s.rep.Moment(s.opts.Now())
	if !ok {
		return s.pim
	}
	_, undo := s.undoAfter(t)
	return simkit.Overlay(s.pim, undo)
}
