package broker

import (
	"context"
	"slices"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// endUnsaved carries out the end of r when the request itself cannot be
// saved (a permanent storage refusal; docs/design.md, real directory rule 4: no stored-data problem
// keeps a membership past its end). r is the ending version that could not
// be saved, its Work recorded. The membership step runs through the ledger,
// whose claim is the intent; the sessions are revoked when the end removed
// the membership and the profile says so, and the ledger remembers that
// (Ledger.Revoked), so the next sweep — which finds the grant still due —
// repeats neither. revoked: the sessions were just revoked (the step whose
// record failed). The request stays as stored, past its end, and the
// dashboard counts it under "Needs attention" (an end overdue).
func (b *Broker) endUnsaved(ctx context.Context, r *access.Request, cause error, revoked bool) error {
	b.log.ErrorContext(ctx, "end not saved; removing and revoking through the membership ledger", "requestId", r.ID, "error", cause.Error())
	if r.Work == nil || r.Work.Membership != access.OpRemove || r.MembershipKey() == "" || r.Requester == "" {
		return cause
	}
	removed := r.Work.Removed
	if !r.Work.MembershipDone {
		var res stepResult
		var err error
		if r.PIMManaged() {
			res, err = b.pimStep(ctx, r, stepRemove)
		} else {
			res, err = b.endMembership(ctx, r)
		}
		if err != nil {
			return err
		}
		removed = removed || res.changed
	}
	if !removed || !r.Work.RevokeSessions {
		return nil
	}
	l, err := b.store.GetLedger(ctx, r.MembershipKey(), r.Requester)
	if err != nil {
		return err
	}
	if slices.Contains(l.Revoked, r.ID) {
		return nil
	}
	if !revoked {
		if err := b.dir.RevokeSessions(ctx, r.Requester); err != nil {
			return err
		}
	}
	_, err = b.updateLedger(ctx, r.MembershipKey(), r.Requester, nil, func(l *access.Ledger) (bool, error) {
		if slices.Contains(l.Revoked, r.ID) {
			return false, nil
		}
		l.Revoked = access.Remember(l.Revoked, r.ID)
		return true, nil
	})
	if err == nil {
		b.log.WarnContext(ctx, "end carried out without its record: membership removed, sessions revoked", "requestId", r.ID)
	}
	return err
}

// unsavable reports whether a save failed for good (not a lost
// compare-and-swap, not an outage).
func unsavable(err error) bool {
	return err != nil && fault.Permanent(err) && !fault.Conflict(err) && !fault.Transient(err)
}

// revokedUnrecorded reports whether the ledger says r's sessions were
// revoked by an end whose record could not be saved. Only work the sweep
// took over (older than WorkGrace) asks: the usual end, carried out by the
// invocation that recorded it, costs no extra read.
func (b *Broker) revokedUnrecorded(ctx context.Context, r *access.Request) bool {
	if r.Work == nil || b.now().Sub(r.Work.Since) < access.WorkGrace || r.MembershipKey() == "" || r.Requester == "" {
		return false
	}
	l, err := b.store.GetLedger(ctx, r.MembershipKey(), r.Requester)
	return err == nil && slices.Contains(l.Revoked, r.ID)
}
