package access

import (
	"slices"
	"time"
)

// Ledger is the per (group, user) record of the membership jitaccess manages:
// which grants rely on it, whether jitaccess created it, and the claim that
// serialises changes to it. It is what makes docs/design.md, rule 5 (an end never
// removes access the user had before, or still has through another grant)
// and real directory rule 1 (write answers are truth, reads are hints) hold. The decisions
// taken on it are in membership.go; docs/design.md "The membership
// protocol" explains why they are safe.
type Ledger struct {
	GroupID string `json:"groupId"`
	UserID  string `json:"userId"`
	// Grants are the request ids whose grant currently relies on the
	// membership: jitaccess's grants (membership and PIM mode) and PIM
	// activations observed and confirmed by Graph.
	Grants []string `json:"grants,omitempty"`
	// Added: Graph answered jitaccess's own add with success (204), and
	// jitaccess has not removed the member since. Such a member is removed
	// once no grant that Graph confirms holds it, whatever audit records or
	// reads say (docs/design.md, real directory rule 2). Only jitaccess's own removal clears it.
	Added bool `json:"added,omitempty"`
	// AddedBy is the grant whose add created the membership (for its
	// history, when a second invocation finds the add done).
	AddedBy string `json:"addedBy,omitempty"`
	// PreExisting: Graph answered the first add attempt of a grant with
	// "already exist" while no grant held the membership: the user had the
	// access before, and jitaccess never removes it. Decided anew by the
	// next add once no grant holds the membership.
	PreExisting bool `json:"preExisting,omitempty"`
	// Probed is the pre-2026-12 flag "PreExisting has been decided by a
	// membership read". Reads no longer decide anything; a stored ledger
	// with it is read as Added when it was not pre-existing (Normalize).
	Probed bool `json:"probed,omitempty"`
	// LastWrite is when jitaccess last changed this membership in Graph (an
	// add or a removal answered). A read made less than the replication
	// window after it may not show it, and decides nothing (docs/design.md, real directory rule 1).
	LastWrite time.Time `json:"lastWrite,omitzero"`
	// ClaimedBy is the request id whose membership change is in progress (the
	// claim); other requests wait until it is done.
	ClaimedBy string `json:"busy,omitempty"`
	// ClaimOp is the change in progress (add or remove).
	ClaimOp MembershipOp `json:"busyOp,omitempty"`
	// Released are the latest request ids whose end removed the membership
	// (bounded). A second invocation carrying out the same removal learns
	// from it that the removal happened, instead of concluding that there
	// was nothing to remove (and so skipping the session revocation). An
	// entry is needed only until that request's end is saved, and harmless
	// after it (no invocation removes for an ended request), so entries are
	// not deleted one by one (a write per grant end) but roll off: the
	// ledger row of a user and group that has had a grant stays, holding at
	// most MaxReleased ids.
	Released []string `json:"released,omitempty"`
	// Ended are the latest request ids whose end took them out of the
	// ledger, or found nothing of theirs in it (bounded): an add of such a
	// request still under way (an approval that raced a cancel, a revoke or
	// the expiry, or a second invocation of the add) must not add after
	// it. Its claim's compare-and-swap fails when the entry is written
	// after it read the ledger, and it finds the entry when it reads after.
	Ended []string `json:"ended,omitempty"`
	// Revoked are the latest request ids whose end revoked the user's
	// sessions without the request recording it (its end could not be
	// saved: docs/design.md, real directory rule 4), bounded like Released, so that the next sweep
	// does not revoke them again.
	Revoked []string `json:"revoked,omitempty"`
	// ClaimedAt is when the claim was taken.
	ClaimedAt time.Time `json:"busySince,omitzero"`
	// ClaimToken identifies the invocation holding the claim. Two invocations of
	// the same request (a redelivery, the sweep) must not both believe they
	// hold the claim: only the holder clears it, and another invocation of
	// the same request may take it over only once it is older than
	// WorkGrace (its holder crashed). Empty while ClaimedBy is set: the holder
	// gave the claim up after a failure, and the next invocation of the
	// request takes it over at once.
	ClaimToken string `json:"busyToken,omitempty"`

	Version string `json:"-"`
}

// MaxReleased bounds Ledger.Released and Ledger.Ended.
const MaxReleased = 16

// Normalize reads a ledger stored by an earlier version: one whose
// membership was decided by a probe (Probed) and not pre-existing was added
// by jitaccess.
func (l *Ledger) Normalize() {
	if l.Probed && !l.PreExisting && len(l.Grants) > 0 && !l.Added && l.ClaimOp != OpAdd {
		l.Added = true
	}
	l.Probed = false
}

// Clone returns a deep copy of the ledger.
func (l *Ledger) Clone() *Ledger {
	c := *l
	c.Grants = slices.Clone(l.Grants)
	c.Released = slices.Clone(l.Released)
	c.Ended = slices.Clone(l.Ended)
	c.Revoked = slices.Clone(l.Revoked)
	return &c
}

// ClearClaim ends the claim on the ledger (no change in progress).
func (l *Ledger) ClearClaim() {
	l.ClaimedBy, l.ClaimOp, l.ClaimedAt, l.ClaimToken = "", "", time.Time{}, ""
}

// Empty reports whether the ledger holds nothing worth keeping: no grants,
// no member jitaccess added, no change in progress, no pre-existing access,
// no recent releases, ends or unsaved revocations (Released, Ended,
// Revoked). An empty ledger is deleted on save.
func (l *Ledger) Empty() bool {
	return len(l.Grants) == 0 && !l.Added && l.ClaimedBy == "" && !l.PreExisting && len(l.Released) == 0 && len(l.Ended) == 0 && len(l.Revoked) == 0
}

// EndGrant takes the grant of request id out of the ledger because that
// request ended, and remembers the end (Ended), so that an add of id still
// under way cannot add after it.
func (l *Ledger) EndGrant(id string) {
	l.Grants = slices.DeleteFunc(l.Grants, func(g string) bool { return g == id })
	l.Ended = Remember(l.Ended, id)
}

// GrantEnded reports whether the ledger knows that request id ended (its
// end took it out of the ledger, removed the membership, or found nothing).
func (l *Ledger) GrantEnded(id string) bool {
	return slices.Contains(l.Ended, id) || slices.Contains(l.Released, id)
}

// Holds reports whether request id is recorded as relying on the membership.
func (l *Ledger) Holds(id string) bool { return slices.Contains(l.Grants, id) }

// LiveClaim reports whether the ledger's claim may still be acted on by the
// invocation that holds it: taken less than WorkGrace ago and not given up.
func (l *Ledger) LiveClaim(now time.Time) bool {
	return l.ClaimedBy != "" && l.ClaimToken != "" && now.Sub(l.ClaimedAt) < WorkGrace
}

// Settled reports whether a read made at t reflects every membership write
// jitaccess made here: t is at least window after the last one (docs/design.md,
// real directory rule 1). Before that, a read may predate the write and decides nothing.
func (l *Ledger) Settled(t time.Time, window time.Duration) bool {
	return l.ClaimedBy == "" && (l.LastWrite.IsZero() || !t.Before(l.LastWrite.Add(window)))
}

// Remember appends id to a bounded list of recent request ids (Released,
// Ended), keeping the newest MaxReleased.
func Remember(list []string, id string) []string {
	if slices.Contains(list, id) {
		return list
	}
	list = append(list, id)
	if len(list) > MaxReleased {
		list = list[len(list)-MaxReleased:]
	}
	return list
}
