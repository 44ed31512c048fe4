package armsim

import (
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
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
// To answer "as of t" the Sim keeps a log of the changes of the last d
// (simkit.Replicas) and undoes, from the current state, those made after
// t. Changes made while the lag is 0 are visible to every read.

// change is one entry of the replica log: the assignment name changed;
// before is what it was (nil: none).
type change struct {
	name   string
	before *Assignment
}

// replicas is the replica-lag state; guarded by s.mu.
type replicas = simkit.Replicas[change]

// SetReplicaLag makes reads lag by up to d, drawing each read's moment
// from a random source seeded with seed (the same seed and sequence of
// calls give the same moments). Changes made before the call while there
// was no lag are visible to every read. d <= 0 turns the lag off.
func (s *Sim) SetReplicaLag(d time.Duration, seed int64) {
	s.locked(func() { s.rep.Set(d, seed, s.opts.Now()) })
}

// ReplicaLag is the current replica lag (0: reads see the truth).
func (s *Sim) ReplicaLag() (d time.Duration) {
	s.locked(func() { d = s.rep.Lag() })
	return d
}

// logChange records that assignment name changed at at (before: what it
// was, nil for none). Expects s.mu held.
func (s *Sim) logChange(at time.Time, name string, before *Assignment) {
	if s.rep.Lag() <= 0 {
		return
	}
	if before != nil {
		cp := *before
		before = &cp
	}
	s.rep.Record(at, s.opts.Now(), change{name: name, before: before})
}

// readView is the set of assignments one read sees: the truth, or under a
// replica lag the state at a random recent moment. The map and its values
// must not be changed. Expects s.mu held.
func (s *Sim) readView() map[string]*Assignment {
	if s.rep.Lag() <= 0 {
		return s.assigns
	}
	t, _ := s.rep.Moment(s.opts.Now())
	undo := map[string]*Assignment{}
	for c := range s.rep.After(t) {
		undo[c.name] = c.before
	}
	return simkit.Overlay(s.assigns, undo)
}
