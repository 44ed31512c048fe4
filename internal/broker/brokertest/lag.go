package brokertest

import (
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Replica lag (docs/design.md, The real directory), as in graphsim: Microsoft Entra is eventually
// consistent and an app-only caller has no session affinity, so a read may
// not show a write that succeeded just before. Under SetReplicaLag(lag, now,
// seed) the directory's reads
//
//	MemberOfAny (nested groups as of then), MembersPort().DirectMembers, PIMEndTime
//
// answer with the memberships and PIM ends as they were at a moment drawn at
// random, independently for each read, from (now-lag, now] on the given
// clock: two reads in a row may go backwards in time. A change made at t is
// seen by every read from t+lag on. The writes (AddMember, RemoveMember,
// AssignPIM, RemovePIM, RevokeSessions) answer from the truth, and so do
// the test's accessors (IsDirectMember, DirectMembers(group), Writes,
// WriteCount, ...). The test's own changes as an administrator (SetMember,
// UnsetMember, SetPIMEnd, EndPIM) lag like any other.
//
// The Dir keeps a log of the changes of the last lag and undoes, from the
// current state, those made after a read's moment. Changes made while the
// lag is 0 (NewSeeded's tenant among them) are visible to every read.

type edge struct{ group, member string }

// change is one log entry: at at, the membership edge changed (it was
// wasMember before), or (pim) the PIM end of pimKey changed (it was
// pimEnd, or none when !hadPIM).
type change struct {
	at        time.Time
	pim       bool
	edge      edge
	wasMember bool
	pimKey    pimKey
	hadPIM    bool
	pimEnd    time.Time
}

// replicas is the Dir's replica-lag state, guarded by Dir.mu.
type replicas struct {
	lag time.Duration
	now func() time.Time
	rng *rand.Rand
	log []change
}

// SetReplicaLag makes the reads lag by up to lag on the clock now (e.g.
// (*Clock).Now), drawing each read's moment from a random source seeded
// with seed (the same seed and the same calls give the same moments).
// Changes made before the call are visible to every read. lag <= 0 turns
// the lag off: every read sees the truth again.
func (d *Dir) SetReplicaLag(lag time.Duration, now func() time.Time, seed int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if lag <= 0 || now == nil {
		d.rep = replicas{}
		return
	}
	log := d.rep.log
	d.rep = replicas{lag: lag, now: now, rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)), log: log}
	d.rep.prune(now())
}

func (r *replicas) on() bool { return r.lag > 0 }

// record appends c, dated now, to the log (when lagging).
func (r *replicas) record(c change) {
	if !r.on() {
		return
	}
	c.at = r.now()
	if n := len(r.log); n > 0 && c.at.Before(r.log[n-1].at) {
		c.at = r.log[n-1].at // a clock set back: keep the log in order
	}
	r.log = append(r.log, c)
	r.prune(c.at)
}

// prune drops the entries every read already sees.
func (r *replicas) prune(now time.Time) {
	cut := now.Add(-r.lag)
	i := sort.Search(len(r.log), func(i int) bool { return r.log[i].at.After(cut) })
	if i > 0 {
		r.log = append(r.log[:0:0], r.log[i:]...)
	}
}

// view returns what one read sees: for every membership and PIM end
// changed after the read's moment, what it was then (nil maps: the truth).
func (r *replicas) view() readView {
	if !r.on() {
		return readView{}
	}
	now := r.now()
	r.prune(now)
	t := now.Add(-time.Duration(r.rng.Float64() * float64(r.lag)))
	var v readView
	for i := len(r.log) - 1; i >= 0 && r.log[i].at.After(t); i-- {
		c := r.log[i]
		if c.pim {
			if v.pim == nil {
				v.pim = map[pimKey]change{}
			}
			v.pim[c.pimKey] = c
			continue
		}
		if v.members == nil {
			v.members = map[edge]bool{}
		}
		v.members[c.edge] = c.wasMember
	}
	return v
}

// readView is one read's moment: the changes it does not see yet.
type readView struct {
	members map[edge]bool
	pim     map[pimKey]change
}

// membersLocked lists the direct members of group (lower case) as v sees
// them.
func (d *Dir) membersLocked(v readView, group string) []string {
	var out []string
	for m := range d.members[group] {
		if on, ok := v.members[edge{group, m}]; !ok || on {
			out = append(out, m)
		}
	}
	for e, on := range v.members {
		if on && e.group == group && !d.members[group][e.member] {
			out = append(out, e.member)
		}
	}
	slices.Sort(out)
	return out
}

// pimEndLocked is the PIM end of k as v sees it.
func (d *Dir) pimEndLocked(v readView, k pimKey) (time.Time, bool) {
	if c, ok := v.pim[k]; ok {
		return c.pimEnd, c.hadPIM
	}
	end, ok := d.pim()[k]
	return end, ok
}

// setPIMLocked sets (on) or clears the PIM end of k, logging the change.
func (d *Dir) setPIMLocked(k pimKey, end time.Time, on bool) {
	before, had := d.pim()[k]
	if had == on && (!on || before.Equal(end)) {
		return
	}
	d.rep.record(change{pim: true, pimKey: k, hadPIM: had, pimEnd: before})
	if on {
		d.pim()[k] = end
	} else {
		delete(d.pim(), k)
	}
}
