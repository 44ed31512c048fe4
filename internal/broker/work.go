package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Graph steps, named for hooks and logs.
const (
	StepProbe  = "probe-membership"
	StepAdd    = "add-member"
	StepRemove = "remove-member"
	StepRevoke = "revoke-sessions"
)

// errBusy: another request is changing the same user's membership of the
// same group; this one waits for it (transient, retried).
var errBusy = fault.Wrap(fault.ErrTransient, "membership", errors.New("another grant is changing this membership"))

// errSuperseded: the request moved on (ended, or another invocation finished
// the step) while this invocation was about to add the membership; runWork
// carries on from the stored request instead.
var errSuperseded = errors.New("request changed while its membership was being added")

// runWork carries out the Graph work recorded on r, one idempotent step at a
// time, saving after each step. A transient failure is saved as a retry (so
// the sweep backs off) and returned; a permanent one ends the request as
// failed and returns nil.
func (b *Broker) runWork(ctx context.Context, r *access.Request) error {
	for r != nil && r.Work != nil {
		step := workStep(r.Work)
		var apply func(*access.Request)
		var err error
		addChanged := false
		switch step {
		case StepAdd, StepRemove:
			var changed bool
			var detail string
			if r.Activation == access.ActivationPIM {
				changed, detail, err = b.pimStep(ctx, r, step)
				apply = func(x *access.Request) { x.PIMStepDone(b.now(), changed, detail) }
				break
			}
			if step == StepAdd {
				changed, detail, err = b.addMembership(ctx, r)
				addChanged = changed && err == nil
			} else {
				changed, detail, err = b.removeMembership(ctx, r)
			}
			apply = func(x *access.Request) { x.MembershipDone(b.now(), changed, detail) }
		case StepRevoke:
			if err = b.hookBefore(StepRevoke, r); err == nil {
				err = b.dir.RevokeSessions(ctx, r.Requester)
				if err == nil {
					err = b.hookAfter(StepRevoke, r)
				}
			}
			apply = func(x *access.Request) { x.SessionsRevoked(b.now()) }
		default:
			return fmt.Errorf("request %s: work in an unknown step", r.ID)
		}
		if errors.Is(err, errSuperseded) {
			if r, err = b.load(ctx, r.ID); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, errBusy) {
			// Not a failure of this work: another invocation (or request)
			// holds the membership. Come back later; record nothing.
			return err
		}
		if err != nil {
			return b.workFailed(ctx, r, err)
		}
		next, applied, err := b.saveStep(ctx, r, step, apply)
		if err != nil {
			return err
		}
		if !applied && step == StepAdd && addChanged {
			// The request moved on (ended) while this add was under way:
			// record that the add happened all the same.
			if next, err = b.recordLateAdd(ctx, r.ID); err != nil {
				return err
			}
		}
		if next != nil && next.Work == nil {
			b.log.InfoContext(ctx, "work done", "requestId", next.ID, "state", string(next.State))
		}
		r = next
	}
	return nil
}

// workStep names the step the work is at.
func workStep(w *access.Work) string {
	switch {
	case !w.MembershipDone && w.Membership == access.OpAdd:
		return StepAdd
	case !w.MembershipDone && w.Membership == access.OpRemove:
		return StepRemove
	case w.NeedsRevoke():
		return StepRevoke
	}
	return ""
}

// saveStep records the result of a Graph step that has been carried out.
// When the save loses a compare-and-swap (another invocation saved the
// request meanwhile, e.g. a retry note), the result is applied again to the
// stored request as long as that same step is still pending there: a
// removal that happened must be recorded — and followed by the session
// revocation — even if its first save lost, never re-judged from a ledger
// that no longer holds the grant.
func (b *Broker) saveStep(ctx context.Context, r *access.Request, step string, apply func(*access.Request)) (*access.Request, bool, error) {
	cur := r
	for range b.opts.MaxConflictRetries {
		next := cur.Clone()
		apply(next)
		err := b.save(ctx, next)
		if err == nil {
			return next, true, nil
		}
		if !fault.Conflict(err) {
			return nil, false, err
		}
		if cur, err = b.load(ctx, r.ID); err != nil {
			return nil, false, err
		}
		if cur == nil || cur.Work == nil || workStep(cur.Work) != step {
			return cur, false, nil // someone else moved it on; carry on from there
		}
	}
	return nil, false, ErrTooManyConflicts
}

// recordLateAdd appends the membership-added entry of an add whose result
// lost the race to be saved (see access.Request.LateMembershipAdded) and
// returns the stored request.
func (b *Broker) recordLateAdd(ctx context.Context, id string) (*access.Request, error) {
	for range b.opts.MaxConflictRetries {
		cur, err := b.load(ctx, id)
		if err != nil || cur == nil {
			return cur, err
		}
		next := cur.Clone()
		if !next.LateMembershipAdded(b.now()) {
			return cur, nil
		}
		err = b.save(ctx, next)
		if err == nil {
			return next, nil
		}
		if !fault.Conflict(err) {
			return nil, err
		}
	}
	return nil, ErrTooManyConflicts
}

// workFailed records a failed step: permanent → the request fails with the
// reason; transient → a retry is noted and the error returned.
func (b *Broker) workFailed(ctx context.Context, r *access.Request, cause error) error {
	if ctx.Err() != nil && !fault.Permanent(cause) {
		return cause
	}
	for range b.opts.MaxConflictRetries {
		next := r.Clone()
		if fault.Permanent(cause) {
			b.releaseLedger(ctx, next)
			next.Fail(b.now(), failureReason(next, cause))
			b.log.WarnContext(ctx, "work failed permanently", "requestId", r.ID, "state", string(next.State))
		} else {
			next.Retry(b.now())
		}
		err := b.save(ctx, next)
		if fault.Conflict(err) {
			if r, err = b.load(ctx, r.ID); err != nil || r == nil || r.Work == nil {
				return errors.Join(cause, err)
			}
			continue
		}
		if err != nil {
			return errors.Join(cause, err)
		}
		if fault.Permanent(cause) {
			return nil
		}
		return cause
	}
	return cause
}

func failureReason(r *access.Request, err error) string {
	what := "adding the membership"
	if r.Work.Membership == access.OpRemove {
		what = "removing the membership"
		if r.Work.MembershipDone {
			what = "revoking sign-in sessions"
		}
	}
	return fmt.Sprintf("%s failed permanently: %v", what, err)
}

// addMembership makes sure the requester is a member of the target group on
// behalf of r, recording in the ledger whether the membership existed before
// jitaccess added it. changed is true when jitaccess really added it.
func (b *Broker) addMembership(ctx context.Context, r *access.Request) (changed bool, detail string, err error) {
	g, u := r.GroupID, r.Requester
	token := newToken()
	claimed := false
	defer func() {
		if claimed && err != nil {
			b.endClaim(ctx, g, u, r.ID, token, errors.Is(err, errSuperseded))
		}
	}()
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return false, "", err
		}
		if l.GrantEnded(r.ID) {
			// r was ended (a cancel, revoke or expiry that raced the
			// approval; or another invocation's add and r's end both
			// happened meanwhile): add nothing.
			return false, "", errSuperseded
		}
		if l.Busy != "" && l.Busy != r.ID {
			return false, "", errBusy
		}
		if l.Busy == r.ID && b.liveClaim(l) {
			// Another invocation of this request (the first delivery, a
			// redelivery, the sweep) holds the claim and may be about to
			// call Graph: taking it over would let that invocation add
			// after a removal it cannot see. It finishes the work, or
			// WorkGrace shows that it crashed.
			return false, "", errBusy
		}
		if l.Busy == r.ID && l.BusyOp != access.OpAdd {
			return false, "", errSuperseded // an end of r is being carried out
		}
		if l.Busy != r.ID {
			if slices.Contains(l.Grants, r.ID) {
				// Done before a crash; the request was not saved after it.
				return !l.PreExisting && len(l.Grants) == 1, "", nil
			}
			if len(l.Grants) > 0 {
				l.Grants = append(l.Grants, r.ID)
				if err := b.store.SaveLedger(ctx, l); err != nil {
					if fault.Conflict(err) {
						continue
					}
					return false, "", err
				}
				return false, "membership already held through overlapping grant " + strings.Join(l.Grants[:len(l.Grants)-1], ", "), nil
			}
			l.Grants, l.Probed, l.PreExisting = []string{r.ID}, false, false
		}
		// Probe first (a read: no claim needed) so that the claim and the
		// probe's result are saved together. The claim's compare-and-swap
		// fails if any invocation changed the ledger since it was read, so
		// no jitaccess add can have slipped in between the probe and the
		// claim (adds happen only under a claim). A claim is never saved
		// unprobed: an invocation that takes a claim over either finds the
		// result or, from a crashed invocation that never added, probes.
		if !l.Probed {
			if err := b.hookBefore(StepProbe, r); err != nil {
				return false, "", err
			}
			got, err := b.dir.MemberOfAny(ctx, u, []string{g})
			if err != nil {
				return false, "", err
			}
			if err := b.hookAfter(StepProbe, r); err != nil {
				return false, "", err
			}
			l.Probed, l.PreExisting = true, len(got) > 0
		}
		if l.PreExisting {
			l.ClearBusy()
			if err := b.store.SaveLedger(ctx, l); err != nil {
				if fault.Conflict(err) {
					continue
				}
				return false, "", err
			}
			return false, "the requester already had this group's access before the grant: nothing added, nothing will be removed", nil
		}
		// Claim (or, after a crash, take over) the ledger for this
		// invocation. Every ledger write here is a compare-and-swap on the
		// version read above, which knew of no end of r (GrantEnded): an
		// end of r recorded in the ledger since makes it fail (and the next
		// round finds it); an end that reads the ledger after it finds r's
		// grant or claim (and waits for the claim). So no re-read of the
		// request is needed.
		l.Busy, l.BusyOp, l.BusySince, l.BusyToken = r.ID, access.OpAdd, b.now(), token
		if err := b.store.SaveLedger(ctx, l); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return false, "", err
		}
		claimed = true
		since := l.BusySince
		if err := b.hookBefore(StepAdd, r); err != nil {
			return false, "", err
		}
		if err := b.withinClaim(ctx, since, func(ctx context.Context) error {
			_, err := b.dir.AddMember(ctx, g, u)
			return err
		}); err != nil {
			return false, "", err
		}
		if err := b.hookAfter(StepAdd, r); err != nil {
			return false, "", err
		}
		if err := b.clearBusy(ctx, l, r.ID, token, false); err != nil {
			return false, "", err
		}
		return true, "", nil
	}
	return false, "", ErrTooManyConflicts
}

// liveClaim reports whether the ledger's claim may still be acted on by the
// invocation that holds it: taken less than WorkGrace ago and not given up.
func (b *Broker) liveClaim(l *access.Ledger) bool {
	return l.BusyToken != "" && b.now().Sub(l.BusySince) < access.WorkGrace
}

// endClaim ends this invocation's claim when it stops without finishing:
// superseded (the request moved on: the claim is cleared), or failed (the
// claim is given up — Busy stays, so the next invocation of the request
// takes it over at once and carries the change out, and a removal knows an
// add may have happened). Best effort: an unended claim expires after
// WorkGrace.
func (b *Broker) endClaim(ctx context.Context, g, u, id, token string, superseded bool) {
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil || l.Busy != id || l.BusyToken != token {
			return
		}
		if superseded {
			l.Busy, l.BusyOp = "", ""
		}
		l.BusySince, l.BusyToken = time.Time{}, ""
		if err := b.store.SaveLedger(ctx, l); !fault.Conflict(err) {
			return
		}
	}
}

// withinClaim runs a Graph write only while this invocation's claim on the
// ledger (taken at since) is fresh, and bounds it so that it cannot still
// be under way when another invocation may take the claim over (WorkGrace
// after since). A claim that has grown too old is given up (transient): the
// next attempt claims afresh.
func (b *Broker) withinClaim(ctx context.Context, since time.Time, write func(context.Context) error) error {
	left := access.WorkGrace - b.now().Sub(since) - access.WorkGrace/4
	if left <= 0 {
		return errClaimExpired
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	return write(ctx)
}

// errClaimExpired: the ledger claim grew too old before the Graph write.
var errClaimExpired = fault.Wrap(fault.ErrTransient, "membership", errors.New("the claim on the membership grew too old; retrying"))

// newToken returns a random invocation token for ledger claims.
func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// removeMembership ends r's claim on the membership and removes the member
// when nothing else holds it: not another active grant, not access the user
// had before jitaccess. changed is true when the membership ended because of
// r (then sessions are revoked).
func (b *Broker) removeMembership(ctx context.Context, r *access.Request) (changed bool, detail string, err error) {
	g, u := r.GroupID, r.Requester
	token := newToken()
	claimed := false
	defer func() {
		if claimed && err != nil {
			b.endClaim(ctx, g, u, r.ID, token, false)
		}
	}()
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return false, "", err
		}
		if l.Busy != "" && l.Busy != r.ID {
			return false, "", errBusy
		}
		if l.Busy == r.ID && b.liveClaim(l) {
			// Another invocation of this request holds the claim: its own
			// add in flight (an approval racing a cancel or revoke: removing
			// now could be undone by that add), or the same removal. Wait
			// for it, or for WorkGrace to show that it crashed.
			return false, "", errBusy
		}
		if l.Busy == r.ID && l.BusyOp == access.OpRemove {
			// Take over the removal of an invocation that crashed or gave up.
			l.BusySince, l.BusyToken = b.now(), token
			if err := b.store.SaveLedger(ctx, l); err != nil {
				if fault.Conflict(err) {
					continue
				}
				return false, "", err
			}
			claimed = true
		} else {
			ownAddInFlight := l.Busy == r.ID && l.BusyOp == access.OpAdd
			if !slices.Contains(l.Grants, r.ID) {
				if slices.Contains(l.Released, r.ID) {
					// Another invocation removed it for this grant; its
					// record of that may have lost the race to be saved.
					return true, "", nil
				}
				if !slices.Contains(l.Ended, r.ID) {
					// Nothing was added for r. Say so in the ledger, so that
					// an add of r still under way (an approval racing this
					// end) cannot add after it (access.Ledger.Ended).
					l.EndGrant(r.ID)
					if err := b.store.SaveLedger(ctx, l); err != nil {
						if fault.Conflict(err) {
							continue
						}
						return false, "", err
					}
				}
				return false, "no membership was added by this grant", nil
			}
			l.EndGrant(r.ID)
			var keep string
			switch {
			case len(l.Grants) > 0:
				keep = "membership kept: still granted by " + strings.Join(l.Grants, ", ")
			case l.PreExisting:
				keep = "membership kept: the user had it before the grant"
			case ownAddInFlight && !l.Probed:
				keep = "no membership was added by this grant"
			}
			if keep != "" {
				if ownAddInFlight {
					l.ClearBusy()
				}
				if err := b.store.SaveLedger(ctx, l); err != nil {
					if fault.Conflict(err) {
						continue
					}
					return false, "", err
				}
				return false, keep, nil
			}
			l.Busy, l.BusyOp, l.BusySince, l.BusyToken = r.ID, access.OpRemove, b.now(), token
			if err := b.store.SaveLedger(ctx, l); err != nil {
				if fault.Conflict(err) {
					continue
				}
				return false, "", err
			}
			claimed = true
		}
		if err := b.hookBefore(StepRemove, r); err != nil {
			return false, "", err
		}
		var removed bool
		if err := b.withinClaim(ctx, l.BusySince, func(ctx context.Context) error {
			var err error
			removed, err = b.dir.RemoveMember(ctx, g, u)
			return err
		}); err != nil {
			return false, "", err
		}
		if err := b.hookAfter(StepRemove, r); err != nil {
			return false, "", err
		}
		if err := b.clearBusy(ctx, l, r.ID, token, true); err != nil {
			return false, "", err
		}
		if !removed {
			return true, "the member had already been removed", nil
		}
		return true, "", nil
	}
	return false, "", ErrTooManyConflicts
}

// confirmAdd is called in PIM mode (whose ends do not look at the ledger,
// so access.Ledger.Ended cannot protect the add) once r's claim on the
// ledger is saved and before the assignment is made. It re-reads the
// request: when it was ended meanwhile (a cancel or revoke that raced the
// approval), its removal step may already have looked at the ledger before
// the claim existed and found nothing to remove, so the claim is withdrawn
// and nothing is added. Any other change (another invocation finished the
// add) also stops this one. Both return errSuperseded.
func (b *Broker) confirmAdd(ctx context.Context, r *access.Request) error {
	cur, err := b.load(ctx, r.ID)
	if err != nil {
		return err
	}
	if cur != nil && cur.Work != nil && cur.Work.Membership == access.OpAdd && !cur.Work.MembershipDone {
		return nil
	}
	if cur == nil || !cur.State.Holds() {
		if err := b.withdrawClaim(ctx, r); err != nil {
			return err
		}
	}
	return errSuperseded
}

// withdrawClaim takes r out of the ledger of its user and group.
func (b *Broker) withdrawClaim(ctx context.Context, r *access.Request) error {
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, r.GroupID, r.Requester)
		if err != nil {
			return err
		}
		if l.Busy != r.ID && !slices.Contains(l.Grants, r.ID) {
			return nil
		}
		if l.Busy == r.ID {
			l.ClearBusy()
		}
		l.EndGrant(r.ID)
		if err := b.store.SaveLedger(ctx, l); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		return nil
	}
	return ErrTooManyConflicts
}

// clearBusy releases this invocation's claim after a finished Graph change;
// after a removal (remember), the ledger also remembers that id's end
// removed the membership (Ledger.Released).
func (b *Broker) clearBusy(ctx context.Context, held *access.Ledger, id, token string, remember bool) error {
	for i := range b.opts.MaxConflictRetries {
		// First with the version this invocation saved (no read: nobody
		// writes a ledger someone else holds); after a conflict, re-read.
		l := held
		if i > 0 {
			var err error
			if l, err = b.store.GetLedger(ctx, held.GroupID, held.UserID); err != nil {
				return err
			}
		}
		if l.Busy != id || l.BusyToken != token {
			return nil // not (any more) this invocation's claim
		}
		l.ClearBusy()
		if remember {
			l.Released = access.Remember(l.Released, id)
		}
		if err := b.store.SaveLedger(ctx, l); err != nil {
			if fault.Conflict(err) {
				continue
			}
			return err
		}
		return nil
	}
	return ErrTooManyConflicts
}

// releaseLedger drops r from the ledger after a permanent failure, so that it
// blocks nobody. Best effort: a leftover is visible and the failure recorded.
func (b *Broker) releaseLedger(ctx context.Context, r *access.Request) {
	if r.GroupID == "" || r.Requester == "" {
		return
	}
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, r.GroupID, r.Requester)
		if err != nil {
			return
		}
		changed := false
		if l.Busy == r.ID {
			if l.BusyOp == access.OpRemove && r.Work != nil && r.Work.Membership == access.OpRemove &&
				!r.Work.MembershipDone && !slices.Contains(l.Grants, r.ID) {
				// The removal failed for good: the member may still be
				// there. Keep the ended grant on record so that drift
				// reconciliation removes the leftover membership.
				l.Grants = append(l.Grants, r.ID)
			}
			l.ClearBusy()
			changed = true
		}
		if r.Work != nil && r.Work.Membership == access.OpAdd && slices.Contains(l.Grants, r.ID) {
			l.EndGrant(r.ID)
			changed = true
		}
		if !changed {
			return
		}
		if err := b.store.SaveLedger(ctx, l); !fault.Conflict(err) {
			return
		}
	}
}

func (b *Broker) hookBefore(step string, r *access.Request) error {
	if b.opts.Hooks == nil || b.opts.Hooks.BeforeGraph == nil {
		return nil
	}
	return b.opts.Hooks.BeforeGraph(step, r)
}

func (b *Broker) hookAfter(step string, r *access.Request) error {
	if b.opts.Hooks == nil || b.opts.Hooks.AfterGraph == nil {
		return nil
	}
	return b.opts.Hooks.AfterGraph(step, r)
}
