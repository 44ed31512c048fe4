package armsim

import (
	"math/rand/v2"
	"sort"
	"time"
)

// Replica lag (docs/design.md, The real directory). Azure RBAC is eventually consistent:
// Microsoft's RBAC troubleshooting guide says ARM caches and role
// assignment changes can take up to 10 minutes to take effect ("Symptom -
// Role assignment changes are not being detected"), and that a listing of a
// principal's assignments can still show a removed one for 5-10 minutes (it
// blames PowerShell's cache there). Reads are modelled as hints that may
// predate any write, the conservative reading the real directory rules ask for (docs/design.md). Under a
// replica lag d
// (Options.ReplicaLag, SetReplicaLag) every read
//
//	GET {scope}/providers/Microsoft.Authorization/roleAssignments[?$filter=...]   (every page on its own)
//	GET {scope}/providers/Microsoft.Authorization/roleAssignments/{name}
//
// answers with the assignments as they were at a moment drawn at random,
// independently for each read, from (now-d, now] on the Sim's clock: two
// reads in a row may go backwards in time. A change made at t is seen by
// every read from t+d on.
//
// Writes and their answers (PUT 201/200/409, DELETE 200/204) and the test
// accessors (Assignments, HasAssignment, Assignment) always see the truth:
// a write's answer is decided on the current state.
//
// To answer "as of t" the Sim keeps a log of the changes of the last d and
// undoes, from the current state, those made after t. Changes made while
// the lag is 0 are visible to every read.

// change is one entry of the replica log: at at, the assignment name
// changed; before is what it was (nil: none).
type change struct {
	at     time.Time
	name   string
	before *Assignment
}

// replicas is the replica-lag state; every method expects s.mu held.
type replicas struct {
	lag time.Duration
	rng *rand.Rand
	log []change
}

func newRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
}

// SetReplicaLag makes reads lag by up to d, drawing each read's moment
// from a random source seeded with seed (the same seed and sequence of
// calls give the same moments). Changes made before the call are visible
// to every read. d <= 0 turns the lag off.
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

// logChange records that assignment name changed at at (before: what it
// was, nil for none). Expects s.mu held.
func (s *Sim) logChange(at time.Time, name string, before *Assignment) {
	r := &s.rep
	if r.lag <= 0 {
		return
	}
	now := s.opts.Now()
	if at.After(now) {
		at = now
	}
	if n := len(r.log); n > 0 && at.Before(r.log[n-1].at) {
		at = r.log[n-1].at
	}
	if before != nil {
		cp := *before
		before = &cp
	}
	r.log = append(r.log, change{at: at, name: name, before: before})
	r.prune(now)
}

// prune drops the entries every read already sees.
func (r *replicas) prune(now time.Time) {
	cut := now.Add(-r.lag)
	i := sort.Search(len(r.log), func(i int) bool { return r.log[i].at.After(cut) })
	if i > 0 {
		r.log = append(r.log[:0:0], r.log[i:]...)
	}
}

// readView is the set of assignments one read sees: the truth, or under a
// replica lag the state at a random recent moment. The map and its values
// must not be changed. Expects s.mu held.
func (s *Sim) readView() map[string]*Assignment {
	r := &s.rep
	if r.lag <= 0 {
		return s.assigns
	}
	now := s.opts.Now()
	r.prune(now)
	t := now.Add(-time.Duration(r.rng.Float64() * float64(r.lag)))
	undo := map[string]*Assignment{}
	for i := len(r.log) - 1; i >= 0 && r.log[i].at.After(t); i-- {
		undo[r.log[i].name] = r.log[i].before
	}
	if len(undo) == 0 {
		return s.assigns
	}
	out := make(map[string]*Assignment, len(s.assigns))
	for k, a := range s.assigns {
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
