// Package api holds the read API's JSON shapes, shared by the server that
// writes them (handlers) and the client that reads them (internal/cli), so
// the two cannot drift apart (docs/design.md, The read API).
package api

import "time"

// Request is the read API's JSON for one request (docs/design.md, The read API). Times
// are RFC 3339 UTC and absent when unset; duration is ISO 8601.
type Request struct {
	ID           string `json:"id"`
	Source       string `json:"source"`
	State        string `json:"state"`
	Requester    string `json:"requester"`
	RequesterUPN string `json:"requesterUpn"`
	Profile      string `json:"profile"`
	GroupID      string `json:"groupId,omitempty"`
	// Scope and RoleDefinitionID: an azure-role grant's target.
	Scope            string `json:"scope,omitempty"`
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`
	Activation       string `json:"activation,omitempty"`
	// Justification and Ticket: why the access is wanted (the approver's
	// question); ApprovalDeadline: when a pending request times out.
	Justification    string    `json:"justification,omitempty"`
	Ticket           string    `json:"ticket,omitempty"`
	ApprovalDeadline time.Time `json:"approvalDeadline,omitzero"`
	Duration         string    `json:"duration,omitempty"`
	RequestedAt      time.Time `json:"requestedAt,omitzero"`
	ActivatedAt      time.Time `json:"activatedAt,omitzero"`
	EndsAt           time.Time `json:"endsAt,omitzero"`
	EndedAt          time.Time `json:"endedAt,omitzero"`
	// AccessGoneBy: on an ended grant, the latest moment the user may still
	// act with what it gave (docs/design.md, The read API; README "How long access lasts").
	AccessGoneBy time.Time `json:"accessGoneBy,omitzero"`
	Reason       string    `json:"reason"`
	// Note explains a PIM-mode step that had nothing to do (PIM mode keeps
	// membership details out of the history).
	Note      string         `json:"note,omitempty"`
	Approvals []Approval     `json:"approvals"`
	History   []HistoryEntry `json:"history"`
}

// Approval is one accepted approval.
type Approval struct {
	Approver    string    `json:"approver"`
	ApproverUPN string    `json:"approverUpn"`
	At          time.Time `json:"at"`
	Comment     string    `json:"comment"`
}

// HistoryEntry is one line of a request's history.
type HistoryEntry struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Actor  string    `json:"actor"`
	Detail string    `json:"detail"`
}
