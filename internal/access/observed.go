package access

import "time"

// Observe creates the record of a grant jitaccess did not make but watches:
// a PIM for Groups activation seen in the audit log (source pim) or a member
// added to a target group outside jitaccess and PIM (source outofband). The
// grant is active from at; endsAt may be zero (unknown: it ends when the
// audit log or the sweep says so). History gets typ (observed / outofband)
// with actor and detail, tagged with eventID (the audit record id).
func Observe(id string, src Source, p Profile, user, upn string, at, endsAt time.Time, typ, actor, detail, eventID string) *Request {
	r := &Request{
		ID:                  id,
		Source:              src,
		State:               Active,
		Requester:           user,
		RequesterUPN:        upn,
		Profile:             p.Name,
		GroupID:             p.TargetGroupID,
		RequestedAt:         at,
		ActivatedAt:         at,
		EndsAt:              endsAt,
		RevokeSessionsOnEnd: p.RevokeSessionsOnEnd,
		DueAt:               endsAt,
	}
	if src == SourcePIM {
		r.Activation = ActivationPIM
	}
	if !endsAt.IsZero() && endsAt.After(at) {
		r.Duration = Duration(endsAt.Sub(at))
	}
	r.addHistory(at, typ, actor, detail, eventID)
	r.rememberEvent(eventID)
	return r
}

// MembershipKey is the membership ledger's key of what r grants: its
// group, or for azure-role a key of its scope and role (RoleTargetKey).
func (r *Request) MembershipKey() string {
	if r.Activation == ActivationAzureRole {
		return RoleTargetKey(r.Scope, r.RoleDefinitionID)
	}
	return r.GroupID
}

// AzureRole reports whether r grants an Azure role assignment.
func (r *Request) AzureRole() bool { return r.Activation == ActivationAzureRole }

// PIMManaged reports whether PIM, not jitaccess, removes the membership at
// the grant's natural end (observed portal activations and PIM-mode grants).
func (r *Request) PIMManaged() bool {
	return r.Source == SourcePIM || r.Activation == ActivationPIM
}

// EndWithoutRemoval ends an active grant whose membership is already gone
// or is not jitaccess's to remove (PIM removed it, someone else removed it):
// the end state is recorded with actor and reason, and, when the profile
// says so, the session revocation follows as recorded work (intent first).
// eventID tags the history entry and is remembered for dedupe.
func (r *Request) EndWithoutRemoval(now time.Time, goal State, actor, reason, eventID string) {
	r.State = Ending
	r.EndedAt = now
	r.Check = nil
	if goal != Expired {
		r.Reason = reason
	}
	r.addHistory(now, string(goal), actor, reason, eventID)
	r.rememberEvent(eventID)
	// A PIM-mode grant whose assignment the user already had before it:
	// nothing of jitaccess's ends, so nothing is revoked (docs/design.md, Semantics).
	removed := !(r.Source == SourceEvents && r.Activation == ActivationPIM && !r.PIMAssigned)
	// The membership step still runs: it settles the ledger and removes a
	// member jitaccess added that no confirmed grant holds (docs/design.md, real directory rule 2).
	r.Work = &Work{Goal: goal, Membership: OpRemove, Removed: removed, External: true,
		RevokeSessions: r.RevokeSessionsOnEnd, Since: now}
	r.DueAt = now.Add(WorkGrace)
}

// RememberEvent records an event id (an audit record id) as applied.
func (r *Request) RememberEvent(id string) { r.rememberEvent(id) }

// AddHistory appends a history entry (for findings the broker records).
func (r *Request) AddHistory(at time.Time, typ, actor, detail, eventID string) {
	r.addHistory(at, typ, actor, detail, eventID)
}

// End records the decision to end a grant as jitaccess would (membership
// removal, then session revocation, as recorded work); used for out-of-band
// members jitaccess removes. eventID tags the entry and is remembered.
func (r *Request) End(now time.Time, goal State, actor, reason, eventID string) {
	r.end(now, goal, actor, reason)
	r.History[len(r.History)-1].EventID = eventID
	r.rememberEvent(eventID)
}

// PIMStepDone records the result of a PIM-mode grant's Graph step (the
// adminAssign at activation, the adminRemove at an early end). PIM mode has
// no membership entries in the history (docs/design.md, Semantics): the detail is kept in
// PIMNote (shown by the read API) instead. changed: the assignment was really created or
// removed by this grant.
func (r *Request) PIMStepDone(now time.Time, changed bool, detail string) {
	w := r.Work
	w.MembershipDone = true
	switch w.Membership {
	case OpAdd:
		r.PIMAssigned = changed
		r.PIMNote = detail
	case OpRemove:
		w.Removed = w.Removed || changed
		if detail != "" {
			r.PIMNote = detail
		}
	}
	r.finishIfDone(now)
}
