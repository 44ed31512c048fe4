// Package access is the pure domain of jitaccess: the request state machine
// and its rules. It does no I/O and never reads the clock; callers pass the
// time, the resolved identities and the profile in, and get the next state
// (with the work to do against Graph recorded as intent) back.
package access

import (
	"time"
)

// State of a request. The first nine are the public states of docs/design.md, The read API;
// Awaiting, Activating and Ending are in-flight states that exist while
// events arrived out of order or while Graph work recorded as intent is
// not yet done.
type State string

const (
	Pending   State = "pending"
	Active    State = "active"
	Expired   State = "expired"
	Revoked   State = "revoked"
	Cancelled State = "cancelled"
	Denied    State = "denied"
	TimedOut  State = "timedout"
	Rejected  State = "rejected"
	Failed    State = "failed"

	// Awaiting: events (approval, cancel...) arrived before the request itself;
	// they are parked and replayed when the request arrives.
	Awaiting State = "awaiting"
	// Activating: the last approval is recorded, the membership is being added.
	Activating State = "activating"
	// Ending: the end is decided and recorded, membership removal and session
	// revocation are being carried out.
	Ending State = "ending"
)

// Ended reports whether s is a final state.
func (s State) Ended() bool {
	switch s {
	case Expired, Revoked, Cancelled, Denied, TimedOut, Rejected, Failed:
		return true
	}
	return false
}

// Holds reports whether a request in state s holds (or is acquiring) the membership.
func (s State) Holds() bool { return s == Active || s == Activating }

// PublicStates are the states a caller may filter by.
var PublicStates = []State{Pending, Active, Expired, Revoked, Cancelled, Denied, TimedOut, Rejected, Failed}

// Source says where a request came from (docs/design.md, Semantics).
type Source string

const (
	SourceEvents    Source = "events"
	SourcePIM       Source = "pim"
	SourceOutOfBand Source = "outofband"
)

// History entry types (the history vocabulary: docs/design.md, Semantics).
const (
	HRequested         = "requested"
	HRejected          = "rejected"
	HApproved          = "approved"
	HRefused           = "refused"
	HDenied            = "denied"
	HActivated         = "activated"
	HExpired           = "expired"
	HRevoked           = "revoked"
	HCancelled         = "cancelled"
	HTimedOut          = "timedout"
	HFailed            = "failed"
	HMembershipAdded   = "membership-added"
	HMembershipRemoved = "membership-removed"
	HSessionsRevoked   = "sessions-revoked"
	HObserved          = "observed"
	HOutOfBand         = "outofband"
	// HNote explains a step that had nothing to do (pre-existing access
	// kept, membership still held by an overlapping grant, nothing added).
	// Stored history is append-only, so explanations get entries of their own.
	HNote = "note"
)

// HistoryEntry is one line of a request's audit trail.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Actor  string    `json:"actor,omitempty"`
	Detail string    `json:"detail,omitempty"`
	// EventID is the CloudEvent id that caused the entry, if any.
	EventID string `json:"eventId,omitempty"`
}

// Approval is an accepted approval.
type Approval struct {
	Approver    string    `json:"approver"` // object id
	ApproverUPN string    `json:"approverUpn,omitempty"`
	At          time.Time `json:"at"`
	Comment     string    `json:"comment,omitempty"`
}

// MembershipOp is the Graph membership change a piece of work needs.
type MembershipOp string

const (
	OpAdd    MembershipOp = "add"
	OpRemove MembershipOp = "remove"
)

// Work is the intent recorded before Graph is called (docs/design.md, rule 8). It is
// carried out by the broker, step by step, each step saved; whoever finds it
// unfinished (a redelivery, the sweep) carries on where it stopped.
type Work struct {
	// Goal is the state the request reaches when the work is done.
	Goal State `json:"goal"`
	// Membership is add (activation) or remove (end).
	Membership MembershipOp `json:"membership"`
	// MembershipDone is set once the membership step has been carried out
	// (including "nothing to do").
	MembershipDone bool `json:"membershipDone,omitempty"`
	// Removed is true when the remove step really removed the member; only then
	// are sessions revoked.
	Removed bool `json:"removed,omitempty"`
	// RevokeSessions: the profile asks for sessions to be revoked at the end.
	RevokeSessions bool `json:"revokeSessions,omitempty"`
	// RevokeDone is set once revokeSignInSessions has succeeded.
	RevokeDone bool `json:"revokeDone,omitempty"`
	// Since is when the intent was recorded.
	Since time.Time `json:"since"`
	// Attempts counts how often the work was tried (for backing off).
	Attempts int `json:"attempts,omitempty"`
	// External: the membership ended outside jitaccess (PIM's end, or a
	// removal by someone else that Graph confirmed). The membership step
	// only settles the ledger — removing a member jitaccess added, should
	// one still be there — and sessions are revoked as for a removal.
	External bool `json:"external,omitempty"`
}

// ParkedEvent is an event that arrived before its request.
type ParkedEvent struct {
	Event    Event     `json:"event"`
	Actor    Actor     `json:"actor"`
	Received time.Time `json:"received"`
}

// Request is a request for access and, once approved, the grant. It is what
// the store keeps per request id and what the read API shows.
type Request struct {
	ID            string    `json:"id"`
	Source        Source    `json:"source"`
	State         State     `json:"state"`
	Requester     string    `json:"requester,omitempty"` // object id
	RequesterUPN  string    `json:"requesterUpn,omitempty"`
	Profile       string    `json:"profile,omitempty"`
	GroupID       string    `json:"groupId,omitempty"`
	Duration      Duration  `json:"duration,omitempty"`
	Justification string    `json:"justification,omitempty"`
	Ticket        string    `json:"ticket,omitempty"`
	RequestedAt   time.Time `json:"requestedAt,omitzero"`
	// ApprovalDeadline is when a pending request times out.
	ApprovalDeadline time.Time      `json:"approvalDeadline,omitzero"`
	ActivatedAt      time.Time      `json:"activatedAt,omitzero"`
	EndsAt           time.Time      `json:"endsAt,omitzero"`
	EndedAt          time.Time      `json:"endedAt,omitzero"`
	Reason           string         `json:"reason,omitempty"`
	Approvals        []Approval     `json:"approvals,omitempty"`
	History          []HistoryEntry `json:"history,omitempty"`

	// Fingerprint identifies the content of the requested event, so that the
	// same requestId with different content is told apart from a redelivery.
	Fingerprint string `json:"fingerprint,omitempty"`
	// EventIDs are the CloudEvent ids (and audit record keys) already
	// applied, newest last, at most 256, ids over 64 characters as a hash
	// (Seen). An id that rolls off may be applied again: every event is
	// idempotent by state (a second approval, cancel or revoke is refused,
	// a second request with the same content is a duplicate), so the price
	// is a refused entry, never a second effect.
	EventIDs []string `json:"eventIds,omitempty"`
	// Refusals counts the rejected and refused entries (and notes of
	// records Graph contradicted) in the history (MaxRecordedRefusals).
	Refusals int `json:"refusals,omitempty"`
	// Work is the Graph work recorded as intent and not finished yet.
	Work *Work `json:"work,omitempty"`
	// Check is a conclusion an audit record or a directory read suggested,
	// waiting for Graph to confirm it after the replication window.
	Check *Check `json:"check,omitempty"`
	// Parked holds events that arrived before the request (state Awaiting).
	Parked []ParkedEvent `json:"parked,omitempty"`
	// DueAt is when the sweep must look at the request next (approval
	// timeout, end of grant, unfinished work); zero when nothing is due.
	DueAt time.Time `json:"dueAt,omitzero"`
	// RevokeSessionsOnEnd and ApprovalsRequired are copied from the profile at
	// request time, so a profile change does not alter running requests.
	RevokeSessionsOnEnd bool `json:"revokeSessionsOnEnd,omitempty"`
	ApprovalsRequired   int  `json:"approvalsRequired,omitempty"`
	// Activation is the profile's activation mode when it is "pim" (PIM
	// owns the membership); empty for membership mode.
	Activation string `json:"activation,omitempty"`
	// PIMAssigned: a PIM-mode grant whose PIM assignment jitaccess created
	// (false when the user already had one: nothing to remove at the end).
	PIMAssigned bool `json:"pimAssigned,omitempty"`
	// Scope and RoleDefinitionID are an azure-role grant's target, copied
	// from the profile at request time (GroupID is then empty).
	Scope            string `json:"scope,omitempty"`
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`
	// AccessGoneBy is, on a grant that ended, the latest moment the user may
	// still act with what it gave (docs/design.md, The read API): when the end was carried
	// out plus the tenant's access-token lifetime (group modes: a token
	// issued before it keeps its groups claim) or the authorization
	// caches' bound (azure-role).
	AccessGoneBy time.Time `json:"accessGoneBy,omitzero"`

	// Outbox holds outcome notifications not yet published; NotifiedState is
	// the last state a notification was queued for; ExpiringNotified is set
	// once the "expiring" notice is queued.
	Outbox           []Notice `json:"outbox,omitempty"`
	NotifiedState    State    `json:"notifiedState,omitempty"`
	ExpiringNotified bool     `json:"expiringNotified,omitempty"`
	// ExpireSeq is the sequence number of the scheduled jit.access.expire
	// message (0: none scheduled).
	ExpireSeq int64 `json:"expireSeq,omitempty"`
	// ExpireMessageID is that message's MessageId and CloudEvent id: random,
	// chosen by the scheduler at each scheduling, never derived from what
	// senders can read (docs/design.md, real directory rule 4). Empty when none is scheduled.
	ExpireMessageID string `json:"expireMessageId,omitempty"`

	// PIMNote explains the last PIM-mode step that had nothing to do (e.g.
	// the assignment already existed), since PIM mode keeps membership
	// details out of the history.
	PIMNote string `json:"pimNote,omitempty"`

	// Version is the store's opaque concurrency token (ETag); empty for a
	// request that was never saved. Not part of the domain's decisions.
	Version string `json:"-"`
	// StoredHistory is how many history entries the store already holds
	// (entries after it are new and get appended on save).
	StoredHistory int `json:"-"`
}

// Rejection is a rejected event that has no usable request id; it is still
// recorded, counted and shown (docs/design.md, Semantics).
type Rejection struct {
	At      time.Time `json:"at"`
	EventID string    `json:"eventId,omitempty"`
	Type    string    `json:"type,omitempty"`
	// RequestID is set when the event named a request that does not exist
	// (an invalid approval for an unknown request must not block that
	// request when it arrives).
	RequestID string `json:"requestId,omitempty"`
	Reason    string `json:"reason"`
}
