package broker

import (
	"context"
	"errors"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

var errNoPIM = fault.Wrap(fault.ErrPermanent, "pim", errors.New("PIM activation is not configured in this deployment"))

// pimStep carries out the membership step of a grant whose membership PIM
// owns (activation "pim"; docs/design.md, Semantics, "PIM idempotency" and
// "Observed portal activations"). At a PIM-mode activation: the grant is recorded in
// the ledger of (group, user) — so that overlapping grants keep the
// membership and audit records of PIM's change are recognised — then a
// time-bound adminAssign for the granted duration (RoleAssignmentExists →
// the user already had it: nothing to remove later). At an end: an early
// end of a PIM-mode grant runs adminRemove (an assignment that no longer
// exists is success); at PIM's own end (natural expiry, observed
// activations) PIM removed the member itself. Every end then leaves the
// ledger (endMembership), which removes a direct member jitaccess added
// should no confirmed grant hold it any more.
func (b *Broker) pimStep(ctx context.Context, r *access.Request, step string) (stepResult, error) {
	if step == stepAdd {
		if b.opts.PIM == nil {
			return stepResult{}, errNoPIM
		}
		if err := b.join(ctx, r.GroupID, r.Requester, r.ID); err != nil {
			return stepResult{}, err
		}
		if err := b.confirmAdd(ctx, r); err != nil {
			return stepResult{}, err
		}
		reqID, already, err := b.opts.PIM.AssignPIM(ctx, r.GroupID, r.Requester, time.Duration(r.Duration), r.Justification)
		if err != nil {
			return stepResult{}, err
		}
		if already {
			return stepResult{detail: "the requester already had an active PIM assignment for this group: nothing assigned, nothing will be removed"}, nil
		}
		d := "PIM assignment created"
		if reqID != "" {
			d += " (PIM request " + reqID + ")"
		}
		return stepResult{changed: true, detail: d}, nil
	}
	var res stepResult
	if !r.Work.External && r.Activation == access.ActivationPIM {
		if !r.PIMAssigned {
			res.detail = "no PIM assignment was created by this grant"
		} else {
			if b.opts.PIM == nil {
				return stepResult{}, errNoPIM
			}
			if err := b.opts.PIM.RemovePIM(ctx, r.GroupID, r.Requester); err != nil {
				return stepResult{}, err
			}
			res.changed, res.detail = true, "PIM assignment removed"
		}
	}
	led, err := b.endMembership(ctx, r)
	if err != nil {
		return stepResult{}, err
	}
	res.removed = led.removed
	return res, nil
}
