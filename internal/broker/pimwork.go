package broker

import (
	"context"
	"errors"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

var errNoPIM = fault.Wrap(fault.ErrPermanent, "pim", errors.New("PIM activation is not configured in this deployment"))

// pimStep carries out a PIM-mode grant's Graph step (DESIGN §5 activation
// "pim", §6a "PIM idempotency"): at activation a time-bound adminAssign for
// the granted duration (RoleAssignmentExists → the user already had it:
// nothing to remove later); at an early end adminRemove (an assignment that
// no longer exists is success). At the natural end PIM removes the member
// itself and no step runs here. The grant is recorded in the ledger of
// (group, user) while it holds, so that audit records of PIM's change are
// recognised and overlapping membership grants do not remove it.
func (b *Broker) pimStep(ctx context.Context, r *access.Request, step string) (changed bool, detail string, err error) {
	if b.opts.PIM == nil {
		return false, "", errNoPIM
	}
	if step == StepAdd {
		if err := b.claim(ctx, r.GroupID, r.Requester, r.ID); err != nil {
			return false, "", err
		}
		if err := b.confirmAdd(ctx, r); err != nil {
			return false, "", err
		}
		if err := b.hookBefore(StepAdd, r); err != nil {
			return false, "", err
		}
		reqID, already, err := b.opts.PIM.AssignPIM(ctx, r.GroupID, r.Requester, time.Duration(r.Duration), r.Justification)
		if err != nil {
			return false, "", err
		}
		if err := b.hookAfter(StepAdd, r); err != nil {
			return false, "", err
		}
		if already {
			return false, "the requester already had an active PIM assignment for this group: nothing assigned, nothing will be removed", nil
		}
		d := "PIM assignment created"
		if reqID != "" {
			d += " (PIM request " + reqID + ")"
		}
		return true, d, nil
	}
	if !r.PIMAssigned {
		return false, "no PIM assignment was created by this grant", nil
	}
	if err := b.hookBefore(StepRemove, r); err != nil {
		return false, "", err
	}
	if err := b.opts.PIM.RemovePIM(ctx, r.GroupID, r.Requester); err != nil {
		return false, "", err
	}
	if err := b.hookAfter(StepRemove, r); err != nil {
		return false, "", err
	}
	return true, "PIM assignment removed", nil
}
