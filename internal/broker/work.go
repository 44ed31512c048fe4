package broker

import (
	"context"
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
		if err != nil {
			return b.workFailed(ctx, r, err)
		}
		next, err := b.saveStep(ctx, r, step, apply)
		if err != nil {
			return err
		}
		if next != nil && next.Work == nil {
			b.log.InfoContext(ctx, "work done", "requestId", next.ID, "state", string(next.State))
			if step == StepRemove || step == StepRevoke {
				b.forgetRelease(ctx, next)
			}
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
func (b *Broker) saveStep(ctx context.Context, r *access.Request, step string, apply func(*access.Request)) (*access.Request, error) {
	cur := r
	for range b.opts.MaxConflictRetries {
		next := cur.Clone()
		apply(next)
		err := b.save(ctx, next)
		if err == nil {
			return next, nil
		}
		if !fault.Conflict(err) {
			return nil, err
		}
		if cur, err = b.load(ctx, r.ID); err != nil {
			return nil, err
		}
		if cur == nil || cur.Work == nil || workStep(cur.Work) != step {
			return cur, nil // someone else moved it on; carry on from there
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
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return false, "", err
		}
		if l.Busy != "" && l.Busy != r.ID {
			return false, "", errBusy
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
				if err := b.confirmAdd(ctx, r); err != nil {
					return false, "", err
				}
				return false, "membership already held through overlapping grant " + strings.Join(l.Grants[:len(l.Grants)-1], ", "), nil
			}
			l.Grants, l.Busy, l.BusyOp, l.BusySince, l.Probed, l.PreExisting = []string{r.ID}, r.ID, access.OpAdd, b.now(), false, false
			if err := b.store.SaveLedger(ctx, l); err != nil {
				if fault.Conflict(err) {
					continue
				}
				return false, "", err
			}
		}
		// The ledger is ours (Busy == r.ID).
		if err := b.confirmAdd(ctx, r); err != nil {
			return false, "", err
		}
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
			if l.PreExisting {
				l.Busy, l.BusyOp = "", ""
			}
			if err := b.store.SaveLedger(ctx, l); err != nil {
				if fault.Conflict(err) {
					continue
				}
				return false, "", err
			}
			if l.PreExisting {
				return false, "the requester already had this group's access before the grant: nothing added, nothing will be removed", nil
			}
		}
		if err := b.hookBefore(StepAdd, r); err != nil {
			return false, "", err
		}
		if _, err := b.dir.AddMember(ctx, g, u); err != nil {
			return false, "", err
		}
		if err := b.hookAfter(StepAdd, r); err != nil {
			return false, "", err
		}
		if err := b.clearBusy(ctx, g, u, r.ID); err != nil {
			return false, "", err
		}
		return true, "", nil
	}
	return false, "", ErrTooManyConflicts
}

// removeMembership ends r's claim on the membership and removes the member
// when nothing else holds it: not another active grant, not access the user
// had before jitaccess. changed is true when the membership ended because of
// r (then sessions are revoked).
func (b *Broker) removeMembership(ctx context.Context, r *access.Request) (changed bool, detail string, err error) {
	g, u := r.GroupID, r.Requester
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return false, "", err
		}
		if l.Busy != "" && l.Busy != r.ID {
			return false, "", errBusy
		}
		if l.Busy == r.ID && l.BusyOp == access.OpAdd && b.now().Sub(l.BusySince) < access.WorkGrace {
			// This request's own add is in flight in another invocation (an
			// approval racing a cancel or revoke): removing now could be
			// undone by that add. Wait for it, or for WorkGrace to show that
			// it crashed.
			return false, "", errBusy
		}
		if !(l.Busy == r.ID && l.BusyOp == access.OpRemove) {
			ownAddInFlight := l.Busy == r.ID && l.BusyOp == access.OpAdd
			if !slices.Contains(l.Grants, r.ID) {
				if slices.Contains(l.Released, r.ID) {
					// Another invocation removed it for this grant; its
					// record of that may have lost the race to be saved.
					return true, "", nil
				}
				return false, "no membership was added by this grant", nil
			}
			l.Grants = slices.DeleteFunc(l.Grants, func(id string) bool { return id == r.ID })
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
					l.Busy, l.BusyOp = "", ""
				}
				if err := b.store.SaveLedger(ctx, l); err != nil {
					if fault.Conflict(err) {
						continue
					}
					return false, "", err
				}
				return false, keep, nil
			}
			l.Busy, l.BusyOp, l.BusySince = r.ID, access.OpRemove, b.now()
			if err := b.store.SaveLedger(ctx, l); err != nil {
				if fault.Conflict(err) {
					continue
				}
				return false, "", err
			}
		}
		if err := b.hookBefore(StepRemove, r); err != nil {
			return false, "", err
		}
		removed, err := b.dir.RemoveMember(ctx, g, u)
		if err != nil {
			return false, "", err
		}
		if err := b.hookAfter(StepRemove, r); err != nil {
			return false, "", err
		}
		if err := b.release(ctx, g, u, r.ID); err != nil {
			return false, "", err
		}
		if !removed {
			return true, "the member had already been removed", nil
		}
		return true, "", nil
	}
	return false, "", ErrTooManyConflicts
}

// confirmAdd is called once r's claim on the ledger is saved and before the
// member is added. It re-reads the request: when it was ended meanwhile (a
// cancel or revoke that raced the approval), its removal step may already
// have looked at the ledger before the claim existed and found nothing to
// remove, so the claim is withdrawn and nothing is added. Any other change
// (another invocation finished the add) also stops this one. Both return
// errSuperseded.
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
			l.Busy, l.BusyOp, l.BusySince = "", "", time.Time{}
		}
		l.Grants = slices.DeleteFunc(l.Grants, func(id string) bool { return id == r.ID })
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

// release clears Busy after r's removal and remembers that r's end removed
// the membership.
func (b *Broker) release(ctx context.Context, g, u, id string) error {
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return err
		}
		if l.Busy != id {
			return nil
		}
		l.Busy, l.BusyOp, l.BusySince = "", "", time.Time{}
		if !slices.Contains(l.Released, id) {
			l.Released = append(l.Released, id)
			if len(l.Released) > access.MaxReleased {
				l.Released = l.Released[len(l.Released)-access.MaxReleased:]
			}
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

// forgetRelease drops r from the ledger's recent releases once r's end is
// saved: no invocation can then record a stale "nothing to remove" over it
// (its save would lose the compare-and-swap). Best effort: a leftover entry
// is bounded and harmless.
func (b *Broker) forgetRelease(ctx context.Context, r *access.Request) {
	if r.GroupID == "" || r.Requester == "" {
		return
	}
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, r.GroupID, r.Requester)
		if err != nil || !slices.Contains(l.Released, r.ID) {
			return
		}
		l.Released = slices.DeleteFunc(l.Released, func(id string) bool { return id == r.ID })
		if err := b.store.SaveLedger(ctx, l); !fault.Conflict(err) {
			return
		}
	}
}

// clearBusy releases the ledger after a finished Graph change.
func (b *Broker) clearBusy(ctx context.Context, g, u, id string) error {
	for range b.opts.MaxConflictRetries {
		l, err := b.store.GetLedger(ctx, g, u)
		if err != nil {
			return err
		}
		if l.Busy != id {
			return nil
		}
		l.Busy, l.BusyOp, l.BusySince = "", "", time.Time{}
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
			l.Busy, l.BusyOp, l.BusySince, changed = "", "", time.Time{}, true
		}
		if r.Work != nil && r.Work.Membership == access.OpAdd && slices.Contains(l.Grants, r.ID) {
			l.Grants = slices.DeleteFunc(l.Grants, func(id string) bool { return id == r.ID })
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
