package access

import (
	"slices"
	"strings"
	"time"
)

// The membership protocol: every decision taken on a Ledger, as pure
// functions of the ledger and the facts the broker gathered (state and facts
// in, decision out). The broker loads the ledger, asks one of these, saves
// the ledger with compare-and-swap (the claim is the intent,
// docs/design.md, rule 8), makes the Graph call the decision names, and records the answer with
// AddAnswered or RemoveAnswered. It decides nothing itself.
//
// The rules they keep (docs/design.md "The membership protocol"):
//   - Write answers are truth, reads are hints (docs/design.md, real directory rule 1): whether the
//     user had the access before a grant is decided by Graph's answer to
//     jitaccess's own add ("already exist" on a grant's first attempt),
//     never by a read.
//   - An end never removes access the user had before, or still has through
//     another grant that jitaccess or Graph confirms (docs/design.md, rule 5).
//   - A member jitaccess added stays known as such until jitaccess removed
//     it, and is removed once no confirmed grant holds it (docs/design.md, real directory rule 2).
//   - One change at a time per user and group: the claim (ClaimedBy) is taken
//     with compare-and-swap before any Graph write and only its holder
//     clears it; a claim older than WorkGrace was left by a crash and is
//     taken over.

// Claim identifies the invocation that would take the ledger: a random token
// and the time (the broker's clock).
type Claim struct {
	Token string
	Now   time.Time
}

// Next is what the broker does after a decision.
type Next int

const (
	// Wait: another request, or another invocation of this one, is changing
	// the membership; try again later (transient; nothing is recorded).
	Wait Next = iota
	// Stop: the request ended while this step was under way (the ledger
	// knows); the step does nothing and the caller carries on from the
	// stored request.
	Stop
	// Done: the step was already carried out (by an invocation whose record
	// of it was lost); record Changed and Detail. The ledger is not saved.
	Done
	// Save: save the ledger (compare-and-swap), then record Changed and
	// Detail. No Graph call.
	Save
	// Call: save the ledger (the claim, i.e. the intent), then make the
	// Graph call (add or remove the member) and record its answer.
	Call
)

// Decision is the outcome of PlanAdd or PlanEnd.
type Decision struct {
	Next Next
	// Changed: the membership was added (removed) for this grant.
	Changed bool
	// Detail explains a step that had nothing to do (history note).
	Detail string
	// Ambiguous (Call of an add): an earlier attempt of this add may have
	// reached Graph and its answer was lost; "already exist" then cannot
	// tell jitaccess's own add from access the user had before.
	Ambiguous bool
}

// Details of steps that had nothing to do; tests and the dashboard match on
// some of them.
const (
	DetailPreExisting   = "the requester already had this group's access before the grant (Graph answered jitaccess's add with \"already exist\"): nothing added, nothing will be removed"
	DetailNothingAdded  = "no membership was added by this grant"
	DetailKeptHadBefore = "membership kept: the user had it before the grant"
	DetailKeptPrefix    = "membership kept: still granted by "
	DetailAlreadyGone   = "the member had already been removed"
	DetailAmbiguousAdd  = "an earlier add attempt's answer was lost and Graph now answers \"already exist\": taken as jitaccess's own add, so the membership is removed at the end"
)

// PlanAdd decides the add step of grant id (its activation). On Call the
// ledger holds id's claim and id is recorded among the grants; the add is
// then made in Graph, even when other grants already hold the membership,
// so that "active" always means the access exists (a member someone else
// removed is added again).
func PlanAdd(l *Ledger, id string, c Claim) Decision {
	switch {
	case l.GrantEnded(id):
		// id ended (a cancel, revoke or expiry that raced the approval; or
		// another invocation's add and id's end both happened meanwhile).
		return Decision{Next: Stop}
	case l.ClaimedBy != "" && l.ClaimedBy != id:
		return Decision{Next: Wait}
	case l.ClaimedBy == id && l.LiveClaim(c.Now):
		// Another invocation of id holds the claim and may be about to call
		// Graph: taking it over would let that invocation add after a
		// removal it cannot see. It finishes, or WorkGrace shows it crashed.
		return Decision{Next: Wait}
	case l.ClaimedBy == id && l.ClaimOp != OpAdd:
		return Decision{Next: Stop} // an end of id is being carried out
	case l.ClaimedBy == id:
		// The add of an invocation that crashed or failed after its call:
		// take it over. Its answer was lost, so this one's is ambiguous.
		l.ClaimedAt, l.ClaimToken = c.Now, c.Token
		return Decision{Next: Call, Ambiguous: true}
	case l.Holds(id):
		// Done before a crash; the request was not saved after it.
		return Decision{Next: Done, Changed: l.Added && l.AddedBy == id}
	}
	if len(l.Grants) == 0 {
		// A new cycle: whether the user has the access on their own is
		// Graph's answer to this add, not what an earlier cycle found.
		l.PreExisting = false
	}
	l.Grants = append(l.Grants, id)
	l.ClaimedBy, l.ClaimOp, l.ClaimedAt, l.ClaimToken = id, OpAdd, c.Now, c.Token
	return Decision{Next: Call}
}

// AddAnswered records Graph's answer to the add of grant id made under
// claim c: created is true for 204 (jitaccess added the member), false for
// 400 "already exist". It returns what the grant's history records. When
// the claim is no longer c's (taken over after WorkGrace), the ledger is
// left to its new holder.
func AddAnswered(l *Ledger, id string, c Claim, created, ambiguous bool) (changed bool, detail string) {
	others := otherGrants(l, id)
	switch {
	case created:
		changed = true
	case l.Added:
		detail = "membership already held through jitaccess's grant " + strings.Join(others, ", ")
		if len(others) == 0 {
			detail = "membership already held: jitaccess added it for an earlier grant and has not removed it"
		}
	case l.PreExisting:
		detail = DetailPreExisting
	case ambiguous:
		changed, detail = true, DetailAmbiguousAdd
	case len(others) > 0:
		detail = "membership already held through grant " + strings.Join(others, ", ")
	default:
		l.PreExisting = true
		detail = DetailPreExisting
	}
	if l.ClaimedBy != id || l.ClaimToken != c.Token {
		return changed, detail
	}
	if changed {
		l.Added, l.AddedBy, l.LastWrite = true, id, c.Now
	}
	l.ClearClaim()
	return changed, detail
}

// Holders are the facts PlanEnd needs about the other grants a ledger lists.
type Holders struct {
	// Confirmed are the grants that still hold the membership by
	// jitaccess's own record (its grants) or Graph's confirmation (PIM
	// activations that assignmentScheduleInstances confirms).
	Confirmed []string
	// Gone are grants that no longer hold anything (ended, unknown): they
	// are dropped from the ledger.
	Gone []string
}

// PlanEnd decides the membership step of the end of grant id. removeUnowned
// asks to remove the member even though jitaccess did not add it (an
// out-of-band member the profile says to remove); access the user had
// before a grant and confirmed grants are still kept. On Call the ledger
// holds id's removal claim.
func PlanEnd(l *Ledger, id string, c Claim, h Holders, removeUnowned bool) Decision {
	switch {
	case l.ClaimedBy != "" && l.ClaimedBy != id:
		return Decision{Next: Wait}
	case l.ClaimedBy == id && l.LiveClaim(c.Now):
		// Another invocation of id holds the claim: its own add in flight
		// (an approval racing a cancel or revoke: removing now could be
		// undone by that add), or the same removal. Wait for it, or for
		// WorkGrace to show that it crashed.
		return Decision{Next: Wait}
	case l.ClaimedBy == id && l.ClaimOp == OpRemove:
		// Take over the removal of an invocation that crashed or gave up.
		l.ClaimedAt, l.ClaimToken = c.Now, c.Token
		return Decision{Next: Call}
	}
	// An add of id whose invocation crashed or gave up after its call: it
	// may have added the member.
	ownAddInFlight := l.ClaimedBy == id && l.ClaimOp == OpAdd
	if !l.Holds(id) && !ownAddInFlight && !removeUnowned {
		if slices.Contains(l.Released, id) {
			// Another invocation removed it for this grant; its record of
			// that may have lost the race to be saved.
			return Decision{Next: Done, Changed: true}
		}
		if slices.Contains(l.Ended, id) {
			return Decision{Next: Done, Detail: DetailNothingAdded}
		}
		// Nothing was added for id. Say so in the ledger, so that an add
		// of id still under way (an approval racing this end) cannot add
		// after it (Ledger.Ended).
		l.EndGrant(id)
		return Decision{Next: Save, Detail: DetailNothingAdded}
	}
	l.EndGrant(id)
	dropGone(l, h)
	if ownAddInFlight {
		l.ClearClaim()
	}
	var confirmed []string
	for _, g := range l.Grants {
		if slices.Contains(h.Confirmed, g) {
			confirmed = append(confirmed, g)
		}
	}
	switch {
	case len(confirmed) > 0:
		return Decision{Next: Save, Detail: DetailKeptPrefix + strings.Join(confirmed, ", ")}
	case l.PreExisting:
		return Decision{Next: Save, Detail: DetailKeptHadBefore}
	case l.Added, ownAddInFlight, removeUnowned:
		l.ClaimedBy, l.ClaimOp, l.ClaimedAt, l.ClaimToken = id, OpRemove, c.Now, c.Token
		return Decision{Next: Call}
	}
	return Decision{Next: Save, Detail: DetailNothingAdded}
}

// RemoveAnswered records Graph's answer to the removal made for id under
// claim c (removed: 204; false: 404, the member was not there). The member
// is no longer jitaccess's, whoever removed it. It returns what the grant's
// history records.
func RemoveAnswered(l *Ledger, id string, c Claim, removed bool) (changed bool, detail string) {
	if !removed {
		detail = DetailAlreadyGone
	}
	if l.ClaimedBy == id && l.ClaimToken == c.Token {
		l.ClearClaim()
		l.Released = Remember(l.Released, id)
		l.Added, l.AddedBy, l.LastWrite = false, "", c.Now
	}
	return true, detail
}

// GiveUp ends claim c of id after a failed Graph call, leaving the ledger
// as it must be for the next invocation. sent says whether the call may
// have reached Graph: then the claim stays (without token), so that the
// next invocation of id takes it over at once and knows an earlier answer
// was lost; an add that never left is withdrawn instead, so the next
// attempt is a first attempt again. It reports whether l changed.
func GiveUp(l *Ledger, id string, c Claim, sent bool) bool {
	if l.ClaimedBy != id || l.ClaimToken != c.Token {
		return false
	}
	if !sent && l.ClaimOp == OpAdd {
		l.ClearClaim()
		l.Grants = slices.DeleteFunc(l.Grants, func(g string) bool { return g == id })
		return true
	}
	l.ClaimedAt, l.ClaimToken = time.Time{}, ""
	return true
}

// Withdraw takes id out of the ledger without any Graph change: its grant
// ended for good (a permanent failure, or a grant whose membership PIM
// owns). A claim id holds is cleared; a member jitaccess added stays known
// as added (Added), so that drift reconciliation removes it should it still
// be there. It reports whether l changed.
func Withdraw(l *Ledger, id string) bool {
	changed := false
	if l.ClaimedBy == id {
		l.ClearClaim()
		changed = true
	}
	if l.Holds(id) || !slices.Contains(l.Ended, id) {
		l.EndGrant(id)
		changed = true
	}
	return changed
}

// Join records grant id as relying on the membership without any Graph
// change (a PIM activation Graph confirmed, a PIM-mode grant before its
// assignment). It reports whether l changed.
func Join(l *Ledger, id string) bool {
	if l.Holds(id) {
		return false
	}
	l.Grants = append(l.Grants, id)
	return true
}

// PlanLeftover decides whether drift reconciliation removes a member it
// found in the group: only a member jitaccess added that no confirmed grant
// holds, and only from a read made at least window after jitaccess's last
// write (a read that may predate a write decides nothing). On true the
// ledger holds the removal claim of id (the reconciliation's own id).
func PlanLeftover(l *Ledger, id string, c Claim, h Holders, readAt time.Time, window time.Duration) bool {
	if !l.Added || l.ClaimedBy != "" || !l.Settled(readAt, window) {
		return false
	}
	for _, g := range l.Grants {
		if !slices.Contains(h.Gone, g) {
			return false // held, or not known to be over: its own end decides
		}
	}
	dropGone(l, h)
	l.ClaimedBy, l.ClaimOp, l.ClaimedAt, l.ClaimToken = id, OpRemove, c.Now, c.Token
	return true
}

// dropGone takes the grants that no longer hold anything out of the ledger,
// remembering their end (an add of theirs still under way must not add).
func dropGone(l *Ledger, h Holders) {
	for _, g := range h.Gone {
		if l.Holds(g) {
			l.EndGrant(g)
		}
	}
}

func otherGrants(l *Ledger, id string) []string {
	var out []string
	for _, g := range l.Grants {
		if g != id {
			out = append(out, g)
		}
	}
	return out
}
