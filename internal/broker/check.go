package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// runCheck decides r's pending check (access.Check) with a Graph read made
// at now, which is at least the replication window after the check was
// recorded and after jitaccess's last write of the membership (docs/design.md,
// real directory rule 1): such a read shows every write made before the check. It returns
// the next version of r to save (nil: nothing to save).
func (b *Broker) runCheck(ctx context.Context, r *access.Request, now time.Time) (*access.Request, error) {
	c := r.Check
	next := r.Clone()
	switch {
	case c.Kind == access.CheckObserved && r.State == access.Confirming:
		return b.confirmObservation(ctx, next, now)
	case r.State != access.Active:
		next.Check = nil
		next.DueAt = next.NaturalDue(b.expiringLead())
		return next, nil
	}
	l, err := b.store.GetLedger(ctx, r.MembershipKey(), r.Requester)
	if err != nil {
		return nil, err
	}
	if !l.Settled(now, b.opts.ReplicationWindow) {
		// jitaccess wrote (or is writing) this membership since: a read now
		// may predate that write.
		due := now.Add(b.opts.ReplicationWindow)
		if !l.LastWrite.IsZero() && l.ClaimedBy == "" {
			due = l.LastWrite.Add(b.opts.ReplicationWindow)
		}
		next.PostponeCheck(due)
		return next, nil
	}
	var gone bool
	var finding string
	switch c.Kind {
	case access.CheckPIMEnded:
		if b.opts.PIM == nil {
			gone = true
			break
		}
		end, ok, err := b.opts.PIM.PIMEndTime(ctx, r.GroupID, r.Requester)
		if err != nil && (fault.Transient(err) || ctx.Err() != nil) {
			return nil, err
		}
		gone = err != nil || !ok || !end.IsZero() && !end.After(now)
		if !gone {
			finding = "audit record contradicted by Graph: PIM for Groups still has an active assignment for this user and group"
			if !end.IsZero() {
				finding += fmt.Sprintf(" (until %s)", end.UTC().Format(time.RFC3339))
			}
			if end, _ := clampEnd(now, end); !end.IsZero() && end.After(next.EndsAt) {
				next.EndsAt = end
			}
		}
	default: // CheckRemoved, CheckVanished
		has, err := b.holdsNow(ctx, r)
		if err != nil {
			return nil, err
		}
		gone = !has
		if !gone && c.Kind == access.CheckRemoved {
			finding = "audit record contradicted by Graph: the member is still in the group"
		}
	}
	if gone {
		detail := "confirmed by Graph"
		if c.Kind == access.CheckVanished {
			detail = ""
		}
		next.CheckConfirmed(now, detail)
		return next, nil
	}
	next.CheckContradicted(now, finding)
	if finding != "" {
		b.recordFinding(ctx, r.ID, c.Record, finding)
	}
	return next, nil
}

// confirmObservation decides a grant observed in the audit log that Graph
// had not confirmed: a PIM activation becomes active when PIM confirms it,
// an out-of-band member when Graph shows it in the group; otherwise the
// record was contradicted and the request ends as rejected, a finding.
func (b *Broker) confirmObservation(ctx context.Context, next *access.Request, now time.Time) (*access.Request, error) {
	var confirmed bool
	var endsAt time.Time
	var err error
	what := "the member is not in the group"
	if next.Source == access.SourcePIM {
		confirmed, endsAt, err = b.confirmPIM(ctx, next.GroupID, next.Requester, next.EndsAt)
		what = "PIM for Groups has no active assignment for this user and group"
	} else {
		var got []string
		got, err = b.dir.MemberOfAny(ctx, next.Requester, []string{next.GroupID})
		if fault.NotFound(err) {
			err = nil
		}
		confirmed = len(got) > 0
	}
	if err != nil {
		return nil, err
	}
	if !confirmed {
		reason := "audit record contradicted by Graph: " + what
		record := next.Check.Record
		next.ObservationContradicted(now, reason)
		b.recordFinding(ctx, next.ID, record, reason)
		return next, nil
	}
	if err := b.join(ctx, next.GroupID, next.Requester, next.ID); err != nil {
		return nil, err
	}
	if next.Source == access.SourcePIM {
		endsAt, _ = clampEnd(next.ActivatedAt, endsAt)
		next.ObservationConfirmed(now, endsAt, "confirmed by Graph")
		return next, nil
	}
	next.ObservationConfirmed(now, time.Time{}, "confirmed by Graph")
	if p, ok := b.profiles.Profile(next.Profile); ok {
		b.outOfBandConfirmed(next, p, now)
	}
	return next, nil
}

// recordFinding keeps a record that Graph contradicted where operators see
// it (the dashboard's rejections), besides the request's history. Best
// effort: the history has it in any case.
func (b *Broker) recordFinding(ctx context.Context, requestID, record, finding string) {
	rej := access.Rejection{At: b.now(), EventID: record, Type: "audit", RequestID: requestID, Reason: finding}
	if err := b.store.RecordRejection(ctx, rej); err != nil {
		b.log.WarnContext(ctx, "finding not recorded", "requestId", requestID, "error", err.Error())
	}
	b.log.WarnContext(ctx, "audit record contradicted by Graph", "requestId", requestID, "recordId", safeID(record))
}
