package access

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// System is the actor recorded for jitaccess's own decisions.
const System = "jitaccess"

// Timing the machine needs besides the profile.
const (
	// AwaitTTL is how long events that arrived before their request are kept
	// waiting for it; then they are recorded as rejected.
	AwaitTTL = 24 * time.Hour
	// WorkGrace is how long the sweep leaves freshly recorded Graph work to the
	// invocation that recorded it before it takes over.
	WorkGrace = 30 * time.Second
	// maxEventIDs bounds the remembered CloudEvent ids per request.
	maxEventIDs = 256
	// MaxRecordedRefusals bounds the rejected and refused events (and the
	// notes of audit records Graph contradicted) a request's history
	// records: past it they go to the rejections log only, and the request
	// is not written. Nothing a sender controls grows a request without
	// bound (docs/design.md, real directory rule 4), and a flood of bad events never competes with
	// the request's end for its compare-and-swap.
	MaxRecordedRefusals = 64
	// MaxParked bounds the events kept for a request that has not arrived.
	MaxParked = 8
	// maxEventKey is the longest event id remembered as is; longer ones are
	// remembered as a hash (the dedupe list is bounded in bytes too).
	maxEventKey = 64
)

// Input is everything the machine needs to apply one event.
type Input struct {
	Event Event
	// Actor is the event's asserted identity, resolved against Entra.
	Actor Actor
	// Profile is the profile named by the request (for a requested event, the
	// one the event names); nil when there is no such profile.
	Profile *Profile
	Now     time.Time
}

// Outcome says what applying an event did.
type Outcome struct {
	// Changed: the request must be saved.
	Changed bool
	// Duplicate: the event was seen before; nothing changed.
	Duplicate bool
	// Rejected: the event was invalid (recorded as rejected).
	Rejected bool
	// Refused: the action was not allowed (recorded as refused).
	Refused bool
	// Reason for a rejection or refusal.
	Reason string
	// Unrecorded: the rejection or refusal is past the request's bound
	// (MaxRecordedRefusals, MaxParked). The request is unchanged; the
	// caller records the event in the rejections log instead.
	Unrecorded bool
}

// Apply applies an event to a request (nil when none is stored under the
// event's requestId) and returns the next version of the request. It never
// modifies r. Every rule (docs/design.md, The rules) that does not need I/O is decided here.
func Apply(r *Request, in Input) (*Request, Outcome) {
	if r != nil && r.Seen(in.Event.ID) {
		return r, Outcome{Duplicate: true}
	}
	var next *Request
	if r == nil {
		if in.Event.Type != TypeRequested {
			if in.Event.Type == TypeExpire {
				// An expire for an unknown request is a leftover: nothing to do.
				return nil, Outcome{Duplicate: true}
			}
			next = &Request{ID: in.Event.RequestID, Source: SourceEvents, State: Awaiting}
			return park(next, in)
		}
		return create(nil, in)
	}
	next = r.clone()
	if next.State == Awaiting {
		if in.Event.Type == TypeRequested {
			return create(next, in)
		}
		if in.Event.Type == TypeExpire {
			return r, Outcome{Duplicate: true}
		}
		return park(next, in)
	}
	out := apply(next, in)
	if out.Changed {
		next.rememberEvent(in.Event.ID)
	}
	return next, out
}

// park keeps an event that arrived before its request.
func park(next *Request, in Input) (*Request, Outcome) {
	if len(next.Parked) >= MaxParked {
		return next, Outcome{Rejected: true, Unrecorded: true,
			Reason: fmt.Sprintf("more than %d events arrived before their request", MaxParked)}
	}
	next.Parked = append(next.Parked, ParkedEvent{Event: in.Event, Actor: in.Actor, Received: in.Now})
	next.rememberEvent(in.Event.ID)
	if next.DueAt.IsZero() {
		next.DueAt = in.Now.Add(AwaitTTL)
	}
	return next, Outcome{Changed: true}
}

// Fingerprint identifies the content of a requested event: the same requestId
// with another fingerprint is a different request and is rejected.
func Fingerprint(ev Event, requester Actor) string {
	who := strings.ToLower(ev.Requester)
	if requester.ID != "" {
		who = requester.ID
	}
	h := sha256.New()
	for _, s := range []string{who, ev.Profile, ev.Duration, ev.Justification, ev.Ticket} {
		fmt.Fprintf(h, "%d:%s|", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// create handles a requested event for a request id that holds nothing yet,
// or only parked events.
func create(parked *Request, in Input) (*Request, Outcome) {
	ev, now := in.Event, in.Now
	r := &Request{
		ID:            ev.RequestID,
		Source:        SourceEvents,
		State:         Pending,
		Requester:     in.Actor.ID,
		RequesterUPN:  in.Actor.UPN,
		Profile:       ev.Profile,
		Justification: ev.Justification,
		Ticket:        ev.Ticket,
		RequestedAt:   now,
		Fingerprint:   Fingerprint(ev, in.Actor),
	}
	if r.Requester == "" {
		r.RequesterUPN = ev.Requester
	}
	var queued []ParkedEvent
	if parked != nil {
		r.EventIDs = parked.EventIDs
		r.History = parked.History
		r.StoredHistory = parked.StoredHistory
		r.Version = parked.Version
		queued = parked.Parked
	}
	r.rememberEvent(ev.ID)
	reject := func(reason string) (*Request, Outcome) {
		r.State = Rejected
		r.Reason = reason
		r.EndedAt = now
		r.DueAt = time.Time{}
		r.addHistory(now, HRejected, in.Actor.Label(), reason, ev.ID)
		// Parked events die with the request: each is recorded as refused.
		for _, p := range queued {
			r.addHistory(now, HRefused, p.Actor.Label(), fmt.Sprintf("%s: request was rejected", shortType(p.Event.Type)), p.Event.ID)
		}
		return r, Outcome{Changed: true, Rejected: true, Reason: reason}
	}
	p := in.Profile
	if p == nil {
		return reject(fmt.Sprintf("unknown profile %q", ev.Profile))
	}
	r.GroupID = p.TargetGroupID
	r.ApprovalsRequired = p.ApprovalsRequired
	r.RevokeSessionsOnEnd = p.RevokeSessionsOnEnd
	switch p.Activation {
	case ActivationPIM:
		r.Activation = ActivationPIM
	case ActivationAzureRole:
		r.Activation = ActivationAzureRole
		r.GroupID = ""
		r.Scope, r.RoleDefinitionID = p.Scope, p.RoleDefinitionID
	}
	d := time.Duration(p.DefaultDuration)
	if ev.Duration != "" {
		var err error
		if d, err = ParseDuration(ev.Duration); err != nil {
			return reject("duration: " + err.Error())
		}
	}
	r.Duration = Duration(d)
	switch {
	case !in.Actor.Found:
		return reject("requester is not a user of this directory")
	case !in.Actor.Enabled:
		return reject("requester's account is disabled")
	case in.Actor.Guest:
		return reject("guest users cannot request access")
	case !in.Actor.InGroups:
		return reject(fmt.Sprintf("requester is not a member of any group eligible for profile %q", p.Name))
	case d > p.Max():
		return reject(fmt.Sprintf("duration %s is longer than the profile's maximum %s", Duration(d), p.MaxDuration))
	case p.RequireJustification && strings.TrimSpace(ev.Justification) == "":
		return reject("a justification is required")
	case p.RequireTicket && strings.TrimSpace(ev.Ticket) == "":
		return reject("a ticket is required")
	}
	r.addHistory(now, HRequested, in.Actor.Label(), "", ev.ID)
	r.DueAt = now.Add(time.Duration(p.ApprovalTimeout))
	r.ApprovalDeadline = r.DueAt
	if p.ApprovalsRequired == 0 {
		r.activate(now, "auto-approved by profile "+p.Name)
	}
	// Replay the events that came early, oldest first by their own time and
	// then by arrival (their time only orders them; it never sets timing).
	sort.SliceStable(queued, func(i, j int) bool {
		a, b := queued[i], queued[j]
		if !a.Event.Time.IsZero() && !b.Event.Time.IsZero() && !a.Event.Time.Equal(b.Event.Time) {
			return a.Event.Time.Before(b.Event.Time)
		}
		return a.Received.Before(b.Received)
	})
	for _, q := range queued {
		apply(r, Input{Event: q.Event, Actor: q.Actor, Profile: p, Now: now})
	}
	return r, Outcome{Changed: true}
}

// apply applies a non-requested event (or a repeated requested event) to an
// existing request, in place.
func apply(r *Request, in Input) Outcome {
	ev, a, now := in.Event, in.Actor, in.Now
	refuse := func(reason string) Outcome {
		if !r.RecordRefusal(now, HRefused, a.Label(), shortType(ev.Type)+": "+reason, ev.ID) {
			return Outcome{Refused: true, Reason: reason, Unrecorded: true}
		}
		return Outcome{Changed: true, Refused: true, Reason: reason}
	}
	switch ev.Type {
	case TypeRequested:
		if r.Fingerprint == Fingerprint(ev, a) {
			return Outcome{Duplicate: true}
		}
		reason := "requestId is already used by a request with different content"
		if !r.RecordRefusal(now, HRejected, a.Label(), reason, ev.ID) {
			return Outcome{Rejected: true, Reason: reason, Unrecorded: true}
		}
		return Outcome{Changed: true, Rejected: true, Reason: reason}

	case TypeExpire:
		if (r.State == Active || r.State == Activating) && !now.Before(r.EndsAt) {
			r.end(now, Expired, System, "")
			return Outcome{Changed: true}
		}
		return Outcome{Duplicate: true} // early or late: a no-op

	case TypeApproved, TypeDenied:
		if r.State != Pending {
			return refuse(fmt.Sprintf("request is %s", r.State.public()))
		}
		if reason := approverProblem(a, r); reason != "" {
			return refuse(reason)
		}
		if ev.Type == TypeDenied {
			r.State = Denied
			r.EndedAt = now
			r.DueAt = time.Time{}
			r.Reason = ev.Reason
			if r.Reason == "" {
				r.Reason = "denied by " + a.Label()
			}
			r.addHistory(now, HDenied, a.Label(), ev.Reason, ev.ID)
			return Outcome{Changed: true}
		}
		for _, ap := range r.Approvals {
			if ap.Approver == a.ID {
				return refuse("this approver has already approved; another approver is required")
			}
		}
		r.Approvals = append(r.Approvals, Approval{Approver: a.ID, ApproverUPN: a.UPN, At: now, Comment: ev.Comment})
		r.addHistory(now, HApproved, a.Label(), ev.Comment, ev.ID)
		if len(r.Approvals) >= r.ApprovalsRequired {
			r.activate(now, "")
		}
		return Outcome{Changed: true}

	case TypeCancelled:
		if !a.Found || a.ID != r.Requester {
			return refuse("only the requester may cancel")
		}
		return endEarly(r, Cancelled, a, ev, now, refuse)

	case TypeRevoked:
		if reason := actorProblem(a, "revoke"); reason != "" {
			return refuse(reason)
		}
		return endEarly(r, Revoked, a, ev, now, refuse)
	}
	return refuse("unsupported event type")
}

// endEarly ends a request before its time (cancel by the requester, revoke
// by an approver): a pending request simply ends; a grant ends with its
// membership removal and session revocation recorded as work.
func endEarly(r *Request, goal State, a Actor, ev Event, now time.Time, refuse func(string) Outcome) Outcome {
	switch {
	case r.State == Pending:
		r.State = goal
		r.EndedAt = now
		r.DueAt = time.Time{}
		r.Reason = ev.Reason
		r.addHistory(now, string(goal), a.Label(), ev.Reason, ev.ID)
	case r.State.Holds():
		r.end(now, goal, a.Label(), ev.Reason)
		r.History[len(r.History)-1].EventID = ev.ID
	default:
		return refuse(fmt.Sprintf("request is %s", r.State.public()))
	}
	return Outcome{Changed: true}
}

// actorProblem checks an approver-role actor (approve, deny, revoke).
func actorProblem(a Actor, verb string) string {
	switch {
	case !a.Found:
		return fmt.Sprintf("%s is not a user of this directory", a.Asserted)
	case !a.Enabled:
		return "the approver's account is disabled"
	case a.Guest:
		return "guest users cannot " + verb
	case !a.InGroups:
		return fmt.Sprintf("%s is not a member of an approver group of the profile", a.Label())
	}
	return ""
}

func approverProblem(a Actor, r *Request) string {
	if p := actorProblem(a, "approve"); p != "" {
		return p
	}
	if a.ID == r.Requester {
		return "requesters cannot approve or deny their own request"
	}
	return ""
}

// activate records the decision to grant: the clock starts now.
func (r *Request) activate(now time.Time, detail string) {
	r.State = Activating
	r.ActivatedAt = now
	r.EndsAt = now.Add(time.Duration(r.Duration))
	r.addHistory(now, HActivated, System, detail, "")
	r.Work = &Work{Goal: Active, Membership: OpAdd, Since: now}
	r.DueAt = now.Add(WorkGrace)
}

// end records the decision to end a grant (expired, revoked, cancelled); the
// membership removal and session revocation follow as recorded work.
func (r *Request) end(now time.Time, goal State, actor, reason string) {
	if goal == Expired && r.PIMManaged() {
		// At the natural end PIM removes the member; jitaccess only revokes
		// the sessions and records the end.
		r.EndWithoutRemoval(now, goal, actor, reason, "")
		return
	}
	r.State = Ending
	r.EndedAt = now
	r.Check = nil
	if goal != Expired {
		r.Reason = reason
	}
	r.addHistory(now, string(goal), actor, reason, "")
	r.Work = &Work{Goal: goal, Membership: OpRemove, RevokeSessions: r.RevokeSessionsOnEnd, Since: now}
	r.DueAt = now.Add(WorkGrace)
}

// Tick is what the sweep applies to a due request: approval timeouts, grant
// ends and requests that never arrived. Unfinished work is the broker's job.
func Tick(r *Request, now time.Time) (*Request, Outcome) {
	if r.Work != nil || now.Before(r.DueAt) || r.DueAt.IsZero() {
		return r, Outcome{}
	}
	next := r.clone()
	switch next.State {
	case Pending:
		if !next.ApprovalDeadline.IsZero() && now.Before(next.ApprovalDeadline) {
			// Due for another reason (a notice to retry), not timed out.
			next.DueAt = next.ApprovalDeadline
			return next, Outcome{Changed: true}
		}
		next.State = TimedOut
		next.EndedAt = now
		next.DueAt = time.Time{}
		next.Reason = "no decision within the approval timeout"
		next.addHistory(now, HTimedOut, System, next.Reason, "")
	case Active:
		if next.EndsAt.IsZero() || now.Before(next.EndsAt) {
			// Due for another reason (a notice, a pending check the broker
			// runs): move on to the next moment that matters.
			due := next.nextDue(next.EndsAt)
			if due.Equal(next.DueAt) {
				return r, Outcome{}
			}
			next.DueAt = due
			return next, Outcome{Changed: true}
		}
		next.end(now, Expired, System, "")
	case Awaiting:
		next.State = Rejected
		next.EndedAt = now
		next.DueAt = time.Time{}
		next.Reason = "events arrived for a request that was never requested"
		next.addHistory(now, HRejected, System, next.Reason, "")
	default:
		if next.State.Ended() {
			next.DueAt = time.Time{}
			return next, Outcome{Changed: true}
		}
		return r, Outcome{}
	}
	return next, Outcome{Changed: true}
}

// MembershipDone records the result of the membership step of the work.
// changed is whether Graph really added (or removed) the member; detail
// explains a step that had nothing to do.
func (r *Request) MembershipDone(now time.Time, changed bool, detail string) {
	w := r.Work
	w.MembershipDone = true
	switch w.Membership {
	case OpAdd:
		if changed {
			r.addHistory(now, HMembershipAdded, System, detail, "")
		} else if detail != "" {
			r.addHistory(now, HNote, System, detail, "")
		}
	case OpRemove:
		w.Removed = w.Removed || changed
		if changed {
			r.addHistory(now, HMembershipRemoved, System, detail, "")
		} else if detail != "" {
			r.addHistory(now, HNote, System, detail, "")
		}
	}
	r.finishIfDone(now)
}

// LateMembershipAdded records a membership add whose result could not be
// saved before the request moved on (a cancel or revoke saved while the add
// was under way). The add happened, so the history says so — after the
// entries already stored, since history is append-only. It reports whether
// an entry was added (false when one is already there).
func (r *Request) LateMembershipAdded(now time.Time) bool {
	for _, h := range r.History {
		if h.Type == HMembershipAdded {
			return false
		}
	}
	r.addHistory(now, HMembershipAdded, System, "carried out while the request was ending; recorded late", "")
	return true
}

// SessionsRevoked records a successful revokeSignInSessions.
func (r *Request) SessionsRevoked(now time.Time) {
	r.Work.RevokeDone = true
	r.addHistory(now, HSessionsRevoked, System, "refresh tokens revoked", "")
	r.finishIfDone(now)
}

// NeedsRevoke reports whether the work still has to revoke sessions.
func (w *Work) NeedsRevoke() bool {
	return w.Membership == OpRemove && w.MembershipDone && w.Removed && w.RevokeSessions && !w.RevokeDone
}

func (r *Request) finishIfDone(now time.Time) {
	w := r.Work
	if !w.MembershipDone || w.NeedsRevoke() {
		return
	}
	r.State = w.Goal
	r.Work = nil
	if r.State == Active {
		r.DueAt = r.EndsAt
	} else {
		r.DueAt = time.Time{}
	}
}

// NaturalDue is when the sweep must next look at a request that has no
// unfinished work and nothing waiting to be published: the approval deadline
// of a pending request, the end of an active grant (or lead before it, when
// an "expiring" notice is still to be sent), the TTL of parked events;
// nothing for an ended request.
func (r *Request) NaturalDue(expiringLead time.Duration) time.Time {
	switch {
	case r.Work != nil, r.State == Awaiting:
		return r.DueAt
	case r.State == Pending:
		if r.ApprovalDeadline.IsZero() {
			return r.DueAt
		}
		return r.ApprovalDeadline
	case r.State == Confirming:
		return r.DueAt
	case r.State == Active:
		if expiringLead > 0 && !r.ExpiringNotified && !r.EndsAt.IsZero() && r.EndsAt.Add(-expiringLead).After(r.ActivatedAt) {
			return r.nextDue(r.EndsAt.Add(-expiringLead))
		}
		return r.nextDue(r.EndsAt)
	}
	return time.Time{}
}

// Fail ends the request as failed after a permanent Graph error.
func (r *Request) Fail(now time.Time, reason string) {
	r.Reason = reason
	r.addHistory(now, HFailed, System, reason, "")
	r.State = Failed
	r.Work = nil
	r.Check = nil
	if r.EndedAt.IsZero() {
		r.EndedAt = now
	}
	r.DueAt = time.Time{}
}

// Retry notes a failed attempt at the work and pushes the next sweep attempt
// back (exponential, capped), so a failing dependency is not hammered.
//
// An end's work is due again at once: the next sweep retries it. The
// sweep's interval is its backoff (one attempt per sweep, and the Graph
// adapter waits out throttling), and no failure pushes an end past the
// first sweep after the outage ends (docs/design.md, real directory rule 4): a backoff counted from
// the last failed redelivery would.
func (r *Request) Retry(now time.Time) {
	r.Work.Attempts++
	if r.Work.Membership == OpRemove {
		r.DueAt = now
		return
	}
	r.DueAt = now.Add(min(WorkGrace<<min(r.Work.Attempts, 6), 15*time.Minute))
}

func (r *Request) addHistory(at time.Time, typ, actor, detail, eventID string) {
	r.History = append(r.History, HistoryEntry{At: at, Type: typ, Actor: actor, Detail: detail, EventID: eventID})
}

// RecordRefusal appends a rejected or refused entry (or a note a sender
// caused) to the history, unless the request already records
// MaxRecordedRefusals of them; the event id is remembered with it. It
// reports whether the entry was recorded (false: the caller records the
// event in the rejections log and leaves the request as it is).
func (r *Request) RecordRefusal(at time.Time, typ, actor, detail, eventID string) bool {
	if r.Refusals >= MaxRecordedRefusals {
		return false
	}
	r.Refusals++
	r.addHistory(at, typ, actor, detail, eventID)
	r.rememberEvent(eventID)
	return true
}

// Seen reports whether the event id was applied to the request before.
func (r *Request) Seen(id string) bool {
	if id == "" {
		return false
	}
	return slices.Contains(r.EventIDs, eventKey(id)) || slices.Contains(r.EventIDs, id)
}

// eventKey is how an event id is remembered: as is up to maxEventKey
// characters, else as a hash of it.
func eventKey(id string) string {
	if len(id) <= maxEventKey {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "#" + hex.EncodeToString(h[:16])
}

func (r *Request) rememberEvent(id string) {
	if id == "" || r.Seen(id) {
		return
	}
	r.EventIDs = append(r.EventIDs, eventKey(id))
	if len(r.EventIDs) > maxEventIDs {
		r.EventIDs = r.EventIDs[len(r.EventIDs)-maxEventIDs:]
	}
}

// public maps in-flight states to what a person would call them.
func (s State) public() State {
	switch s {
	case Activating:
		return Active
	case Ending:
		return "ending"
	}
	return s
}

func shortType(t string) string { return strings.TrimPrefix(t, "jit.access.") }

// Clone returns a deep copy of the request.
func (r *Request) Clone() *Request { return r.clone() }

func (r *Request) clone() *Request {
	c := *r
	c.Approvals = slices.Clone(r.Approvals)
	c.History = slices.Clone(r.History)
	c.EventIDs = slices.Clone(r.EventIDs)
	c.Parked = slices.Clone(r.Parked)
	c.Outbox = slices.Clone(r.Outbox)
	if r.Work != nil {
		w := *r.Work
		c.Work = &w
	}
	if r.Check != nil {
		k := *r.Check
		c.Check = &k
	}
	return &c
}
