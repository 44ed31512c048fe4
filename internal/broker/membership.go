package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/arm/armid"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// The broker's side of the membership protocol: it gathers the facts, asks
// the pure decisions of package access (PlanAdd, AddAnswered, PlanEnd,
// RemoveAnswered), saves the ledger through updateLedger and makes the
// Graph call the decision names. Rule 5 and the real directory rules (docs/design.md) live in
// internal/access/membership.go; docs/design.md explains the protocol.

// errBusy: another request is changing the same user's membership of the
// same group; this one waits for it (transient, retried).
var errBusy = fault.Wrap(fault.ErrTransient, "membership", errors.New("another grant is changing this membership"))

// errSuperseded: the request moved on (ended, or another invocation finished
// the step) while this invocation was about to add the membership; runWork
// carries on from the stored request instead.
var errSuperseded = errors.New("request changed while its membership was being added")

// errClaimExpired: the ledger claim grew too old before the Graph write.
var errClaimExpired = fault.Wrap(fault.ErrTransient, "membership", errors.New("the claim on the membership grew too old; retrying"))

// stepResult is what a membership step records on the request.
type stepResult struct {
	// changed: the membership was added (removed) for this grant.
	changed bool
	// detail explains a step that had nothing to do.
	detail string
	// removed: Graph answered jitaccess's removal with 204 (a real change).
	removed bool
}

// addMembership carries out the add step of r's activation: the ledger
// decides (access.PlanAdd) and Graph's answer to the add says whether
// jitaccess added the member or the user already had it (docs/design.md,
// real directory rule 1).
func (b *Broker) addMembership(ctx context.Context, r *access.Request) (stepResult, error) {
	var ambiguous bool
	res, _, err := b.changeMembership(ctx, r,
		func(l *access.Ledger, claim func() access.Claim) (access.Decision, error) {
			d := access.PlanAdd(l, r.ID, claim())
			ambiguous = d.Ambiguous
			return d, nil
		},
		func(ctx context.Context, _ *access.Ledger) (bool, error) { return b.grant(ctx, r) },
		func(l *access.Ledger, c access.Claim, created bool) (bool, string) {
			// A role assignment is named after its request: ARM's answer is
			// never ambiguous (a repeat of ours is 200, someone else's is 409).
			return access.AddAnswered(l, r.ID, c, created, ambiguous && !r.AzureRole())
		})
	if r.AzureRole() && res.changed && res.detail == "" {
		res.detail = "role assignment " + b.assignmentName(r.ID) + " created at the profile's scope"
	}
	return res, err
}

// endMembership carries out the ledger side of r's end (access.PlanEnd):
// r leaves the ledger, and the member is removed when jitaccess added it
// (or, for an out-of-band member the profile says to remove, whoever did)
// and no grant that jitaccess or Graph confirms still holds it.
func (b *Broker) endMembership(ctx context.Context, r *access.Request) (stepResult, error) {
	removeUnowned := r.Source == access.SourceOutOfBand && (r.Work == nil || !r.Work.External)
	res, removed, err := b.changeMembership(ctx, r,
		func(l *access.Ledger, claim func() access.Claim) (access.Decision, error) {
			h, err := b.holderFacts(ctx, l, r.ID)
			if err != nil {
				return access.Decision{}, err
			}
			return access.PlanEnd(l, r.ID, claim(), h, removeUnowned), nil
		},
		func(ctx context.Context, held *access.Ledger) (bool, error) { return b.ungrant(ctx, r, held.AddedBy) },
		func(l *access.Ledger, c access.Claim, removed bool) (bool, string) {
			return access.RemoveAnswered(l, r.ID, c, removed)
		})
	res.removed = removed
	if r.AzureRole() && removed && res.detail == "" {
		res.detail = "role assignment deleted"
	}
	return res, err
}

// changeMembership is the one shape of a membership step (docs/design.md,
// The membership protocol), for the add and the end alike:
//
//  1. decide and claim in one compare-and-swap of the ledger: plan gathers
//     the facts it needs and asks the pure decision (access.PlanAdd or
//     PlanEnd), which records the claim when it names a call;
//  2. make that one call (Graph or ARM) while the claim is fresh
//     (withinClaim); after a failure, give the claim up (access.GiveUp)
//     and return the error;
//  3. record the call's answer and end the claim in a second
//     compare-and-swap (access.AddAnswered or RemoveAnswered), from the
//     ledger saved in 1.
//
// answer is what the call said (created, removed); false when no call was
// made. plan runs again from a fresh ledger after a lost compare-and-swap;
// it calls claim once its facts are gathered, just before it decides, for
// this invocation's claim stamped with the time (the claim's age, and so
// how long the call may take, counts from then).
func (b *Broker) changeMembership(ctx context.Context, r *access.Request,
	plan func(l *access.Ledger, claim func() access.Claim) (access.Decision, error),
	call func(ctx context.Context, held *access.Ledger) (bool, error),
	answered func(l *access.Ledger, c access.Claim, answer bool) (changed bool, detail string),
) (res stepResult, answer bool, err error) {
	g, u := r.MembershipKey(), r.Requester
	c := access.Claim{Token: newToken()}
	var d access.Decision
	held, err := b.updateLedger(ctx, g, u, nil, func(l *access.Ledger) (bool, error) {
		var err error
		d, err = plan(l, func() access.Claim { c.Now = b.now(); return c })
		return d.Next == access.Save || d.Next == access.Call, err
	})
	if err != nil {
		return stepResult{}, false, err
	}
	switch d.Next {
	case access.Wait:
		return stepResult{}, false, errBusy
	case access.Stop:
		return stepResult{}, false, errSuperseded
	case access.Done, access.Save:
		return stepResult{changed: d.Changed, detail: d.Detail}, false, nil
	}
	sent := false
	err = b.withinClaim(ctx, c.Now, func(ctx context.Context) error {
		sent = true
		var err error
		answer, err = call(ctx, held)
		return err
	})
	if err != nil {
		b.giveUp(ctx, g, u, r.ID, c, sent)
		return stepResult{}, false, err
	}
	_, err = b.updateLedger(ctx, g, u, held, func(l *access.Ledger) (bool, error) {
		ours := l.ClaimedBy == r.ID && l.ClaimToken == c.Token
		res.changed, res.detail = answered(l, c, answer)
		return ours, nil
	})
	return res, answer, err
}

// holderFacts says which of the other grants the ledger lists still hold
// the membership (access.Holders): jitaccess's own grants by their stored
// state; PIM activations (observed, or PIM-mode grants) only when
// assignmentScheduleInstances confirms an active assignment (docs/design.md, real directory rule 2).
// A PIM activation Graph does not confirm is not kept for: its own end
// takes it out of the ledger. Requests that ended or are unknown are gone.
func (b *Broker) holderFacts(ctx context.Context, l *access.Ledger, except string) (access.Holders, error) {
	var h access.Holders
	pimChecked, pimActive := false, false
	for _, id := range l.Grants {
		if id == except {
			continue
		}
		r, err := b.load(ctx, id)
		if fault.Unreadable(err) {
			// A stored request that cannot be decoded holds nothing jitaccess
			// can vouch for: it never keeps a member past the grants that
			// can be read (the listing and the dashboard name it).
			b.log.WarnContext(ctx, "ledger names an unreadable request", "requestId", id)
			h.Gone = append(h.Gone, id)
			continue
		}
		if err != nil {
			return h, err
		}
		switch {
		case r == nil || r.State.Ended():
			h.Gone = append(h.Gone, id)
		case !r.State.Holds():
			// Ending (its own end takes it out) or not yet holding.
		case r.PIMManaged():
			if !pimChecked {
				pimChecked = true
				if b.opts.PIM != nil {
					end, ok, err := b.opts.PIM.PIMEndTime(ctx, l.GroupID, l.UserID)
					if err != nil && (fault.Transient(err) || ctx.Err() != nil) {
						return h, err
					}
					pimActive = err == nil && ok && (end.IsZero() || end.After(b.now()))
				}
			}
			if pimActive {
				h.Confirmed = append(h.Confirmed, id)
			}
		default:
			h.Confirmed = append(h.Confirmed, id)
		}
	}
	return h, nil
}

// giveUp ends this invocation's claim after a failed Graph call
// (access.GiveUp). Best effort: an unended claim expires after WorkGrace.
func (b *Broker) giveUp(ctx context.Context, g, u, id string, c access.Claim, sent bool) {
	_, _ = b.updateLedger(ctx, g, u, nil, func(l *access.Ledger) (bool, error) {
		return access.GiveUp(l, id, c, sent), nil
	})
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

// newToken returns a random invocation token for ledger claims.
func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// join records grant id as relying on the membership of (group, user)
// without a Graph change (access.Join).
func (b *Broker) join(ctx context.Context, g, u, id string) error {
	_, err := b.updateLedger(ctx, g, u, nil, func(l *access.Ledger) (bool, error) {
		return access.Join(l, id), nil
	})
	return err
}

// withdraw takes id out of the ledger of its user and group without a
// Graph change (access.Withdraw).
func (b *Broker) withdraw(ctx context.Context, r *access.Request) error {
	if r.MembershipKey() == "" || r.Requester == "" {
		return nil
	}
	_, err := b.updateLedger(ctx, r.MembershipKey(), r.Requester, nil, func(l *access.Ledger) (bool, error) {
		return access.Withdraw(l, r.ID), nil
	})
	return err
}

// confirmAdd is called in PIM mode once r is recorded in the ledger and
// before the PIM assignment is made. It re-reads the request: when it was
// ended meanwhile (a cancel or revoke that raced the approval), its end may
// already have looked at the ledger before r was in it, so r is withdrawn
// and nothing is assigned. Any other change (another invocation finished
// the add) also stops this one. Both return errSuperseded.
func (b *Broker) confirmAdd(ctx context.Context, r *access.Request) error {
	cur, err := b.load(ctx, r.ID)
	if err != nil {
		return err
	}
	if cur != nil && cur.Work != nil && cur.Work.Membership == access.OpAdd && !cur.Work.MembershipDone {
		return nil
	}
	if cur == nil || !cur.State.Holds() {
		if err := b.withdraw(ctx, r); err != nil {
			return err
		}
	}
	return errSuperseded
}

// errNoARM: an azure-role grant in a deployment without Azure Resource
// Manager configured.
var errNoARM = fault.Wrap(fault.ErrPermanent, "arm", errors.New("azure-role activation is not configured in this deployment"))

// grant makes what r grants, for r: the requester added to the target
// group (Graph), or the role assignment named after r created at its scope
// (ARM). created is Graph's 204 / ARM's 201 (or 200, a repeat of the same
// name); false is "already exist" / RoleAssignmentExists.
func (b *Broker) grant(ctx context.Context, r *access.Request) (bool, error) {
	if r.AzureRole() {
		if b.opts.ARM == nil {
			return false, errNoARM
		}
		return b.opts.ARM.Assign(ctx, r.Scope, r.RoleDefinitionID, r.Requester, b.assignmentName(r.ID))
	}
	return b.dir.AddMember(ctx, r.GroupID, r.Requester)
}

// ungrant takes away what a grant gave: the requester removed from the
// group, or the role assignment that the request addedBy created (the
// ledger's AddedBy; r itself when its own add may have landed) deleted.
func (b *Broker) ungrant(ctx context.Context, r *access.Request, addedBy string) (bool, error) {
	if r.AzureRole() {
		if b.opts.ARM == nil {
			return false, errNoARM
		}
		if addedBy == "" {
			addedBy = r.ID
		}
		return b.opts.ARM.Delete(ctx, r.Scope, b.assignmentName(addedBy))
	}
	return b.dir.RemoveMember(ctx, r.GroupID, r.Requester)
}

// holdsNow reads whether the requester has what r grants (a read: a hint).
func (b *Broker) holdsNow(ctx context.Context, r *access.Request) (bool, error) {
	if r.AzureRole() {
		if b.opts.ARM == nil {
			return false, errNoARM
		}
		return b.opts.ARM.Holds(ctx, r.Scope, r.RoleDefinitionID, r.Requester)
	}
	got, err := b.dir.MemberOfAny(ctx, r.Requester, []string{r.GroupID})
	if fault.NotFound(err) {
		return false, nil
	}
	return len(got) > 0, err
}

// assignmentName is the ARM role assignment name of request id: a GUID
// derived from the deployment's namespace and the id (armid.AssignmentName),
// so that a retry is idempotent and deployments sharing a tenant do not
// collide.
func (b *Broker) assignmentName(id string) string {
	return armid.AssignmentName(b.opts.AssignmentNamespace + "/" + id)
}
