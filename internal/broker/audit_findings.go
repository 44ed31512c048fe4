package broker

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/audit"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// What each kind of audit record does. An audit record is a claim made by
// whoever can send to the audit hub: it triggers a check with Graph, never
// a conclusion (docs/design.md, real directory rule 3). A PIM activation becomes a grant only when
// assignmentScheduleInstances confirms it; a record that a member was
// removed, or that PIM ended an activation, ends the grant only when Graph
// confirms it after the replication window (check.go); a record Graph
// contradicts is kept as a finding operators see.

// pimEndSlack: a PIM-initiated removal of the member this close to (or
// after) the grant's end is its natural expiry.
const pimEndSlack = time.Minute

// maxObservedEnd bounds the end of an observed grant: an end further away
// is recorded this far out and read again from PIM then (a value a sender
// controls must not be stored as is).
const maxObservedEnd = 365 * 24 * time.Hour

// holders loads the requests the ledger of (group, user) lists as holding
// the membership (missing requests are skipped).
func (b *Broker) holders(ctx context.Context, g, u string) ([]*access.Request, error) {
	l, err := b.store.GetLedger(ctx, g, u)
	if err != nil {
		return nil, err
	}
	var out []*access.Request
	for _, id := range l.Grants {
		r, err := b.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// remember adds an audit record's key to request id (a record that changes
// nothing else), so a redelivery is a no-op.
func (b *Broker) remember(ctx context.Context, id, key string) error {
	_, err := b.updateRequest(ctx, id, func(cur *access.Request) (*access.Request, error) {
		if cur == nil || cur.Seen(key) {
			return nil, nil
		}
		next := cur.Clone()
		next.RememberEvent(key)
		return next, nil
	})
	return err
}

// observePIM handles a PIM activation (or PIM's directory change adding the
// member) that jitaccess did not make (docs/design.md, Semantics "Observed portal
// activations"). One observed grant per user and group is active at a
// time: later records of the same activation attach to it. The grant exists
// only once Graph confirms the activation; until then it waits, confirming.
func (b *Broker) observePIM(ctx context.Context, f audit.Finding, p access.Profile) error {
	key := recordKey(f)
	hs, err := b.holders(ctx, f.GroupID, f.UserID)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.Seen(key) {
			return nil
		}
		if h.State.Holds() && h.PIMManaged() {
			// The same activation seen again, or a PIM-mode grant of ours.
			return b.remember(ctx, h.ID, key)
		}
	}
	id := "pim-" + f.PIMRequestID
	if f.PIMRequestID == "" {
		start := f.StartTime
		if start.IsZero() {
			start = f.At
		}
		id = "pim-" + hashOf(f.UserID, f.GroupID, start.UTC().Format(time.RFC3339))
	}
	existing, err := b.load(ctx, id)
	if err != nil {
		return err
	}
	if existing != nil {
		return b.remember(ctx, id, key)
	}
	now := b.now()
	confirmed, endsAt, err := b.confirmPIM(ctx, f.GroupID, f.UserID, f.ExpirationTime)
	if err != nil {
		return err
	}
	if !confirmed && f.PIMRequestID == "" {
		// Only PIM's directory change, without a request id, and PIM has no
		// such activation (any more): a late or repeated record of an
		// activation already recorded and ended under its PIM request id.
		b.log.InfoContext(ctx, "PIM membership change without an active PIM assignment: ignored", "groupId", f.GroupID, "userId", f.UserID)
		return nil
	}
	detail := "PIM for Groups activation observed in the audit log"
	if f.AdminAssignment {
		detail = "PIM for Groups assignment observed in the audit log"
	}
	if f.PIMRequestID != "" {
		detail += "; PIM request " + f.PIMRequestID
	}
	actor := f.Actor.String()
	if actor == "" || f.Initiator == audit.ByPIM && !f.AdminAssignment {
		actor = f.UserID
		if f.UserUPN != "" {
			actor = f.UserUPN
		}
	}
	endsAt, clamped := clampEnd(now, endsAt)
	r := access.Observe(id, access.SourcePIM, p, f.UserID, f.UserUPN, now, endsAt, access.HObserved, actor, detail, key)
	if clamped {
		r.AddHistory(now, access.HNote, access.System, "the end PIM gives is more than a year away: recorded a year out, and read again from PIM then", "")
	}
	if !confirmed {
		// Not (yet) known to PIM: a record that arrived before PIM's reads
		// show the activation, or one Entra never wrote. Graph decides
		// after the replication window (check.go).
		r.AwaitConfirmation(now, now.Add(b.opts.ReplicationWindow), key)
	} else if err := b.join(ctx, f.GroupID, f.UserID, id); err != nil {
		return err
	}
	_, err = b.updateRequest(ctx, id, func(cur *access.Request) (*access.Request, error) {
		if cur != nil {
			return nil, nil // recorded meanwhile by another invocation
		}
		return r, nil
	})
	if err != nil {
		return err
	}
	b.log.InfoContext(ctx, "PIM activation observed", "requestId", id, "groupId", f.GroupID, "userId", f.UserID, "state", string(r.State))
	return nil
}

// confirmPIM asks Graph whether the user has an active PIM assignment for
// the group now (assignmentScheduleInstances), and when it ends. Without
// the PIM read (not configured, or not permitted), a transitive membership
// confirms it and the record's own end (recordEnd) is used.
func (b *Broker) confirmPIM(ctx context.Context, g, u string, recordEnd time.Time) (confirmed bool, endsAt time.Time, err error) {
	now := b.now()
	if b.opts.PIM != nil {
		end, ok, err := b.opts.PIM.PIMEndTime(ctx, g, u)
		switch {
		case err != nil && (fault.Transient(err) || ctx.Err() != nil):
			return false, time.Time{}, err
		case err == nil:
			if ok && (end.IsZero() || end.After(now)) {
				return true, end, nil
			}
			return false, time.Time{}, nil
		}
		b.log.WarnContext(ctx, "PIM assignments not readable; confirming by membership", "groupId", g, "userId", u, "error", err.Error())
	}
	got, err := b.dir.MemberOfAny(ctx, u, []string{g})
	if err != nil && !fault.NotFound(err) {
		return false, time.Time{}, err
	}
	return len(got) > 0, recordEnd, nil
}

// clampEnd bounds an observed end to maxObservedEnd from now.
func clampEnd(now, end time.Time) (time.Time, bool) {
	if !end.IsZero() && end.Sub(now) > maxObservedEnd {
		return now.Add(maxObservedEnd), true
	}
	return end, false
}

// suspectHolders records, on every grant of (group, user) that pick
// selects, a check of what the record says (access.Request.Suspect): the
// grant ends only when Graph confirms it after the replication window.
func (b *Broker) suspectHolders(ctx context.Context, f audit.Finding, pick func(*access.Request) (access.Check, string, bool)) error {
	key := recordKey(f)
	hs, err := b.holders(ctx, f.GroupID, f.UserID)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		_, err := b.updateRequest(ctx, h.ID, func(cur *access.Request) (*access.Request, error) {
			if cur == nil || cur.Seen(key) || cur.State != access.Active || cur.Work != nil {
				return nil, nil
			}
			c, note, ok := pick(cur)
			if !ok {
				return nil, nil
			}
			now := b.now()
			c.Since, c.Due, c.Record = now, now.Add(b.opts.ReplicationWindow), key
			next := cur.Clone()
			if !next.Suspect(now, c, note) {
				return nil, nil
			}
			return next, nil
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.log.InfoContext(ctx, "audit record to be checked with Graph", "requestId", h.ID, "recordId", safeID(f.RecordID), "kind", string(f.Kind))
	}
	return errors.Join(errs...)
}

// pimEnded: a record says PIM ended an activation or assignment (expiry,
// the user's deactivation, an administrator's removal).
func (b *Broker) pimEnded(ctx context.Context, f audit.Finding) error {
	return b.suspectHolders(ctx, f, func(r *access.Request) (access.Check, string, bool) {
		if !r.PIMManaged() {
			return access.Check{}, "", false
		}
		c := access.Check{Kind: access.CheckPIMEnded, Goal: access.Expired, Actor: "PIM"}
		note := "audit record: PIM ended the activation"
		switch {
		case f.Deactivated:
			who := f.UserUPN
			if who == "" {
				who = f.UserID
			}
			c.Goal, c.Actor, c.Reason = access.Cancelled, who, "deactivated in PIM by the user"
			note = "audit record: the user deactivated the PIM activation"
		case f.AdminAssignment && f.Initiator == audit.ByOther:
			c.Goal, c.Actor, c.Reason = access.Revoked, f.Actor.String(), "PIM assignment removed outside jitaccess"
			note = "audit record: PIM assignment removed outside jitaccess by " + f.Actor.String()
		}
		return c, note + "; checking with Graph after the replication window", true
	})
}

// pimRemovedMember: a record says MS-PIM removed the member. Near or after
// the end this is the natural expiry; earlier, the PIM record (deactivation
// or removal) says what happened and drift reconciliation is the backstop.
func (b *Broker) pimRemovedMember(ctx context.Context, f audit.Finding) error {
	now := b.now()
	return b.suspectHolders(ctx, f, func(r *access.Request) (access.Check, string, bool) {
		if !r.PIMManaged() || r.EndsAt.IsZero() || now.Before(r.EndsAt.Add(-pimEndSlack)) {
			return access.Check{}, "", false
		}
		return access.Check{Kind: access.CheckPIMEnded, Goal: access.Expired, Actor: "PIM"},
			"audit record: PIM removed the member at the end of the activation; checking with Graph after the replication window", true
	})
}

// removedByOther: a record says someone other than jitaccess and PIM
// removed a member whose grant jitaccess holds. Once Graph confirms the
// member is gone, the grant ends as revoked.
func (b *Broker) removedByOther(ctx context.Context, f audit.Finding) error {
	actor := f.Actor.String()
	if actor == "" {
		actor = "unknown"
	}
	return b.suspectHolders(ctx, f, func(r *access.Request) (access.Check, string, bool) {
		return access.Check{Kind: access.CheckRemoved, Goal: access.Revoked, Actor: actor,
				Reason: "member removed from the group outside jitaccess by " + actor},
			"audit record: member removed from the group outside jitaccess by " + actor + "; checking with Graph after the replication window", true
	})
}

// outOfBand: a record says someone other than jitaccess and PIM added a
// member to a target group (docs/design.md, Semantics "Out-of-band findings"). The
// finding is recorded once Graph shows the member in the group.
func (b *Broker) outOfBand(ctx context.Context, f audit.Finding, p access.Profile) error {
	key := recordKey(f)
	hs, err := b.holders(ctx, f.GroupID, f.UserID)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.State.Holds() || h.Seen(key) {
			// Held by a grant jitaccess knows: not out-of-band.
			return nil
		}
	}
	id := "oob-" + strings.TrimPrefix(key, "audit:")
	existing, err := b.load(ctx, id)
	if err != nil {
		return err
	}
	if existing != nil {
		if existing.Work != nil {
			return b.runWork(ctx, existing)
		}
		return nil
	}
	got, err := b.dir.MemberOfAny(ctx, f.UserID, []string{f.GroupID})
	if err != nil && !fault.NotFound(err) {
		return err
	}
	actor := f.Actor.String()
	if actor == "" {
		actor = "unknown"
	}
	now := b.now()
	r := access.Observe(id, access.SourceOutOfBand, p, f.UserID, f.UserUPN, now, time.Time{}, access.HOutOfBand, actor,
		"added to the group outside jitaccess and PIM by "+actor, key)
	if len(got) == 0 {
		// Graph does not show the member (yet): decided after the window.
		r.AwaitConfirmation(now, now.Add(b.opts.ReplicationWindow), key)
	} else {
		if err := b.join(ctx, f.GroupID, f.UserID, id); err != nil {
			return err
		}
		b.outOfBandConfirmed(r, p, now)
	}
	saved, err := b.updateRequest(ctx, id, func(cur *access.Request) (*access.Request, error) {
		if cur != nil {
			return nil, nil
		}
		return r, nil
	})
	if err != nil {
		return err
	}
	b.log.InfoContext(ctx, "out-of-band member recorded", "requestId", id, "groupId", f.GroupID, "userId", f.UserID, "state", string(saved.State))
	if saved.Work != nil {
		return b.runWork(ctx, saved)
	}
	return nil
}

// outOfBandConfirmed applies the profile's outOfBand rule to a confirmed
// out-of-band member: recorded, or removed with its sessions revoked.
func (b *Broker) outOfBandConfirmed(r *access.Request, p access.Profile, now time.Time) {
	if p.OutOfBand == access.OutOfBandRemove {
		r.End(now, access.Revoked, access.System, "out-of-band member removed (profile outOfBand: remove)", "")
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// followPIMExtension is asked by the sweep before it ends an observed PIM
// activation at its recorded end: when PIM says the activation now ends
// later (the user extended it), it moves and saves the grant's end and
// answers true (nothing ends now).
func (b *Broker) followPIMExtension(ctx context.Context, r *access.Request, now time.Time) (bool, error) {
	if b.opts.PIM == nil || r.Source != access.SourcePIM || r.State != access.Active || r.EndsAt.IsZero() || now.Before(r.EndsAt) {
		return false, nil
	}
	end, ok, err := b.opts.PIM.PIMEndTime(ctx, r.GroupID, r.Requester)
	switch {
	case err != nil && (fault.Transient(err) || ctx.Err() != nil):
		return false, err
	case err != nil, !ok, end.IsZero(), !end.After(now):
		return false, nil
	}
	end, _ = clampEnd(now, end)
	next := r.Clone()
	next.EndsAt = end
	if d := end.Sub(next.ActivatedAt); d <= maxObservedEnd {
		next.Duration = access.Duration(d)
	}
	next.DueAt = end
	if err := b.persist(ctx, next); err != nil {
		return false, err
	}
	b.flushOutcomes(ctx, next)
	b.log.InfoContext(ctx, "observed PIM activation extended", "requestId", r.ID)
	return true, nil
}
