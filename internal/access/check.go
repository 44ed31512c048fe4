package access

import "time"

// Confirming is the in-flight state of a grant jitaccess observed in the
// audit log (a PIM activation, an out-of-band addition) that Graph has not
// confirmed yet. It holds nothing; it becomes active when Graph confirms it,
// and rejected — a finding operators see — when Graph contradicts it
// (docs/design.md, real directory rule 3).
const Confirming State = "confirming"

// CheckKind says what an untrusted source suggested about a request.
type CheckKind string

const (
	// CheckRemoved: an audit record says someone removed the member.
	CheckRemoved CheckKind = "removed"
	// CheckPIMEnded: an audit record says PIM ended the activation.
	CheckPIMEnded CheckKind = "pim-ended"
	// CheckVanished: a directory listing, made after the replication
	// window, did not show the member of an active grant.
	CheckVanished CheckKind = "vanished"
	// CheckObserved: a PIM activation or an out-of-band addition seen in the
	// audit log, which Graph has not confirmed yet (state Confirming).
	CheckObserved CheckKind = "observed"
)

// Check is a conclusion an untrusted source suggested — an audit record
// (anyone who can send to the audit hub can write one) or a directory read
// that may predate a write — waiting for Graph to confirm or contradict it
// with a read made after the replication window (docs/design.md, real directory rules 1 and 3). An
// audit record triggers a check, never a conclusion.
type Check struct {
	Kind CheckKind `json:"kind"`
	// Since is when jitaccess learned of it (its own clock).
	Since time.Time `json:"since"`
	// Due is the earliest moment a read may decide it: Since plus the
	// replication window (later when jitaccess wrote the membership since).
	Due time.Time `json:"due"`
	// Goal, Actor and Reason are the end recorded if it is confirmed
	// (CheckRemoved, CheckPIMEnded, CheckVanished).
	Goal   State  `json:"goal,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Record is the audit record's dedupe key, when a record caused it.
	Record string `json:"record,omitempty"`
}

// Suspect records check c on an active grant and moves its due time so
// that the sweep runs the check at c.Due. Only one check is pending at a
// time: while one is, a further record is only remembered (so a flood of
// records adds nothing but their bounded dedupe keys). note, when set, is
// recorded in the history (what the record says, for operators). It reports
// whether r changed.
func (r *Request) Suspect(now time.Time, c Check, note string) bool {
	if r.State != Active || r.Work != nil {
		return false
	}
	if r.Check != nil {
		if c.Record == "" || r.Seen(c.Record) {
			return false
		}
		r.rememberEvent(c.Record)
		return true
	}
	cc := c
	r.Check = &cc
	if note == "" || !r.RecordRefusal(now, HNote, System, note, c.Record) {
		r.rememberEvent(c.Record)
	}
	if r.DueAt.IsZero() || c.Due.Before(r.DueAt) {
		r.DueAt = c.Due
	}
	return true
}

// PostponeCheck moves the pending check to due (jitaccess wrote the
// membership since it was recorded, so a read before due may predate that
// write).
func (r *Request) PostponeCheck(due time.Time) {
	if r.Check == nil {
		return
	}
	r.Check.Due = due
	r.DueAt = r.nextDue(r.EndsAt)
}

// CheckConfirmed ends the grant as the pending check said: Graph confirmed,
// after the window, that the membership (or the PIM activation) is gone.
// The membership is not jitaccess's to remove any more, but the end still
// runs the membership step (a member jitaccess added is removed, docs/design.md,
// real directory rule 2) and revokes the sessions when the profile says so.
func (r *Request) CheckConfirmed(now time.Time, detail string) {
	c := r.Check
	r.Check = nil
	reason := c.Reason
	if detail != "" {
		if reason != "" {
			reason += "; "
		}
		reason += detail
	}
	r.EndWithoutRemoval(now, c.Goal, c.Actor, reason, "")
}

// CheckContradicted drops the pending check: Graph does not confirm it. The
// finding is recorded in the history (the caller also records it where
// operators look).
func (r *Request) CheckContradicted(now time.Time, finding string) {
	r.Check = nil
	if finding != "" {
		// A sender's claim: bounded like refusals (the rejections log keeps
		// every finding).
		r.RecordRefusal(now, HNote, System, finding, "")
	}
	r.DueAt = r.nextDue(r.EndsAt)
}

// AwaitConfirmation turns a freshly observed grant (Observe) into one that
// waits for Graph's confirmation until due.
func (r *Request) AwaitConfirmation(now, due time.Time, record string) {
	r.State = Confirming
	r.Check = &Check{Kind: CheckObserved, Since: now, Due: due, Record: record}
	r.DueAt = due
}

// ObservationConfirmed makes a confirming grant active: Graph confirmed it.
// endsAt is Graph's end (zero: none known).
func (r *Request) ObservationConfirmed(now, endsAt time.Time, detail string) {
	r.State = Active
	r.Check = nil
	r.EndsAt = endsAt
	if !endsAt.IsZero() && endsAt.After(r.ActivatedAt) {
		r.Duration = Duration(endsAt.Sub(r.ActivatedAt))
	}
	r.DueAt = endsAt
	if detail != "" {
		r.addHistory(now, HNote, System, detail, "")
	}
}

// ObservationContradicted ends a confirming grant as rejected: Graph does
// not confirm what the audit record said. It holds nothing, so nothing is
// removed and no session is revoked.
func (r *Request) ObservationContradicted(now time.Time, reason string) {
	r.State = Rejected
	r.Check = nil
	r.Reason = reason
	r.EndedAt = now
	r.DueAt = time.Time{}
	r.addHistory(now, HRejected, System, reason, "")
}

// nextDue is when the sweep must look at an active grant next: its end, or
// its pending check when that comes first.
func (r *Request) nextDue(end time.Time) time.Time {
	if r.Check != nil && (end.IsZero() || r.Check.Due.Before(end)) {
		return r.Check.Due
	}
	return end
}
