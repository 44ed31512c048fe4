package simkit

import (
	"iter"
	"math/rand/v2"
	"sort"
	"time"
)

// Replicas is the replica lag of a simulated store that is eventually
// consistent (docs/design.md, The real directory): under a lag d each read
// is answered as of a moment of its own, drawn at random from (now-d, now]
// (Moment), so two reads in a row may go backwards in time, and a change
// made at t is seen by every read from t+d on.
//
// To answer "as of t" the simulator undoes, from its current state, the
// changes made after t (After). Replicas keeps the log of the changes of
// the last d, each an E that says how to undo it, oldest first with times
// never decreasing; older ones are dropped, as no read looks that far
// back. Changes made while the lag is 0 are not logged: every read sees
// them.
//
// The zero Replicas has no lag. It is not safe for concurrent use: the
// simulator guards it with the lock of the state it lags.
type Replicas[E any] struct {
	lag time.Duration
	rng *rand.Rand
	log []logged[E]
}

type logged[E any] struct {
	at     time.Time
	change E
}

// Set makes reads lag by up to d, drawing their moments from a random
// source seeded with seed (the same seed and the same sequence of calls
// give the same moments). A log kept under an earlier lag stays, less the
// changes made at or before now-d. d <= 0 turns the lag off and forgets
// the log: every read sees the truth.
func (r *Replicas[E]) Set(d time.Duration, seed int64, now time.Time) {
	if d <= 0 {
		*r = Replicas[E]{}
		return
	}
	r.lag = d
	r.rng = rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	r.prune(now)
}

// Lag is the current lag (0: reads see the truth).
func (r *Replicas[E]) Lag() time.Duration { return r.lag }

// Len is how many changes the log holds.
func (r *Replicas[E]) Len() int { return len(r.log) }

// Record logs change, made at at, when there is a lag. A change dated
// after now (such as one ahead of the clock) counts as made now, and one
// dated before the last logged change as made with it.
func (r *Replicas[E]) Record(at, now time.Time, change E) {
	if r.lag <= 0 {
		return
	}
	if at.After(now) {
		at = now
	}
	if n := len(r.log); n > 0 && at.Before(r.log[n-1].at) {
		at = r.log[n-1].at
	}
	r.log = append(r.log, logged[E]{at, change})
	r.prune(now)
}

// prune drops the changes every read already sees (made at or before
// now-lag).
func (r *Replicas[E]) prune(now time.Time) {
	cut := now.Add(-r.lag)
	i := sort.Search(len(r.log), func(i int) bool { return r.log[i].at.After(cut) })
	if i > 0 {
		r.log = append(r.log[:0:0], r.log[i:]...)
	}
}

// Moment draws the moment one read sees: a time in (now-lag, now]. ok is
// false when there is no lag (the read sees the truth).
func (r *Replicas[E]) Moment(now time.Time) (t time.Time, ok bool) {
	if r.lag <= 0 {
		return now, false
	}
	r.prune(now)
	return now.Add(-time.Duration(r.rng.Float64() * float64(r.lag))), true
}

// After yields the logged changes made after t, newest first: undone in
// that order, they take the state back to what it was at t.
func (r *Replicas[E]) After(t time.Time) iter.Seq[E] {
	return func(yield func(E) bool) {
		for i := len(r.log) - 1; i >= 0 && r.log[i].at.After(t); i-- {
			if !yield(r.log[i].change) {
				return
			}
		}
	}
}

// Overlay is cur as it was before the changes in undo: for every key of
// undo its value there, or no entry where that is nil (the key did not
// exist). It returns cur itself when undo is empty and never changes cur.
func Overlay[K comparable, V any](cur, undo map[K]*V) map[K]*V {
	if len(undo) == 0 {
		return cur
	}
	out := make(map[K]*V, len(cur))
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range undo {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}
