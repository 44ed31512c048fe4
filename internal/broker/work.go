package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// The steps of a request's work, in the order runWork carries them out.
const (
	stepAdd    = "add-member"
	stepRemove = "remove-member"
	stepRevoke = "revoke-sessions"
)

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
		case stepAdd, stepRemove:
			var res stepResult
			if r.PIMManaged() {
				res, err = b.pimStep(ctx, r, step)
				apply = func(x *access.Request) {
					x.PIMStepDone(b.now(), res.changed, res.detail)
					if res.removed {
						x.AddHistory(b.now(), access.HMembershipRemoved, access.System, "jitaccess's own direct membership, no longer held by any grant", "")
					}
				}
				break
			}
			if step == stepAdd {
				res, err = b.addMembership(ctx, r)
				addChanged = res.changed && err == nil
			} else {
				res, err = b.endMembership(ctx, r)
				if r.Work.External {
					// The membership ended outside jitaccess: only a real
					// removal of jitaccess's own member is worth an entry.
					res.changed, res.detail = res.removed, ""
				}
			}
			apply = func(x *access.Request) { x.MembershipDone(b.now(), res.changed, res.detail) }
		case stepRevoke:
			if b.revokedUnrecorded(ctx, r) {
				// Revoked already by an end whose record could not be
				// saved (endUnsaved): record it, do not revoke again.
				apply = func(x *access.Request) { x.SessionsRevoked(b.now()) }
				break
			}
			err = b.dir.RevokeSessions(ctx, r.Requester)
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
		if unsavable(err) && r.Work.Membership == access.OpRemove {
			// The step happened but cannot be recorded: finish the end
			// without its record (docs/design.md, real directory rule 4).
			return b.endUnsaved(ctx, r, err, step == stepRevoke)
		}
		if err != nil {
			return err
		}
		if !applied && step == stepAdd && addChanged {
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
		return stepAdd
	case !w.MembershipDone && w.Membership == access.OpRemove:
		return stepRemove
	case w.NeedsRevoke():
		return stepRevoke
	}
	return ""
}

// saveStep records the result of a Graph step that has been carried out.
// When the save loses a compare-and-swap (another invocation saved the
// request meanwhile, e.g. a retry note), the result is applied again to the
// stored request as long as that same step is still pending there: a
// removal that happened must be recorded — and followed by the session
// revocation — even if its first save lost, never re-judged from a ledger
// that no longer holds the grant. applied is false when the stored request
// had moved on (someone else carried it on; continue from there).
func (b *Broker) saveStep(ctx context.Context, r *access.Request, step string, apply func(*access.Request)) (*access.Request, bool, error) {
	applied := false
	// The first attempt starts from the version this invocation holds: no
	// re-read unless the save loses.
	out, err := b.updateRequestFrom(ctx, r.ID, r, func(cur *access.Request) (*access.Request, error) {
		applied = false
		if cur == nil || cur.Work == nil || workStep(cur.Work) != step {
			return nil, nil // someone else moved it on; carry on from there
		}
		next := cur.Clone()
		apply(next)
		applied = true
		return next, nil
	})
	return out, applied, err
}

// recordLateAdd appends the membership-added entry of an add whose result
// lost the race to be saved (see access.Request.LateMembershipAdded) and
// returns the stored request.
func (b *Broker) recordLateAdd(ctx context.Context, id string) (*access.Request, error) {
	return b.updateRequest(ctx, id, func(cur *access.Request) (*access.Request, error) {
		if cur == nil {
			return nil, nil
		}
		next := cur.Clone()
		if !next.LateMembershipAdded(b.now()) {
			return nil, nil
		}
		return next, nil
	})
}

// workFailed records a failed step: permanent → the request fails with the
// reason (and leaves the ledger); transient → a retry is noted (the sweep
// backs off) and the error returned.
func (b *Broker) workFailed(ctx context.Context, r *access.Request, cause error) error {
	if ctx.Err() != nil && !fault.Permanent(cause) {
		return cause
	}
	_, err := b.updateRequestFrom(ctx, r.ID, r, func(cur *access.Request) (*access.Request, error) {
		if cur == nil || cur.Work == nil {
			return nil, nil
		}
		next := cur.Clone()
		if fault.Permanent(cause) {
			if err := b.withdraw(ctx, next); err != nil {
				b.log.WarnContext(ctx, "ledger not released after a permanent failure", "requestId", r.ID, "error", err.Error())
			}
			next.Fail(b.now(), failureReason(next, cause))
			b.log.WarnContext(ctx, "work failed permanently", "requestId", r.ID, "state", string(next.State))
		} else {
			next.Retry(b.now())
		}
		return next, nil
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	if fault.Permanent(cause) {
		return nil
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
