package broker

import (
	"context"
	"time"
)

// PIM is the PIM for Groups part of Graph (docs/design.md, Operations) the broker uses for
// PIM-mode grants and observed portal activations. graph.Client implements it.
type PIM interface {
	// AssignPIM creates a time-bound active membership assignment (adminAssign).
	// alreadyAssigned: Graph answered RoleAssignmentExists.
	AssignPIM(ctx context.Context, groupID, userID string, duration time.Duration, justification string) (requestID string, alreadyAssigned bool, err error)
	// RemovePIM ends it (adminRemove); an assignment that does not exist is success.
	RemovePIM(ctx context.Context, groupID, userID string) error
	// PIMEndTime reads the end of the user's active PIM membership.
	PIMEndTime(ctx context.Context, groupID, userID string) (end time.Time, ok bool, err error)
}

// Members lists a group's direct members (drift reconciliation).
// graph.Client implements it.
type Members interface {
	DirectMembers(ctx context.Context, groupID string) ([]string, error)
}

// Self is jitaccess's own identity in Entra: its application (client) id and
// its service principal object id (docs/design.md, Semantics "Own changes").
type Self struct {
	AppID    string
	ObjectID string
}

// RoleAssignments is the part of Azure Resource Manager the broker uses
// for azure-role grants (docs/design.md, Operations): a role assignment to the requester at
// the profile's scope, named after the request (so that a retry is
// idempotent and a removal can only remove what a request made).
// arm.Client implements it.
type RoleAssignments interface {
	// Assign creates the assignment name; created is false when the
	// principal already had the role at the scope under another name
	// (409 RoleAssignmentExists: someone else's).
	Assign(ctx context.Context, scope, roleDefinitionID, principalID, name string) (created bool, err error)
	// Delete removes the assignment name; removed is false when it was not
	// there.
	Delete(ctx context.Context, scope, name string) (removed bool, err error)
	// Holds reports whether the principal has the role at the scope (a
	// read: a hint).
	Holds(ctx context.Context, scope, roleDefinitionID, principalID string) (bool, error)
	// Principals lists the principals with the role assigned exactly at
	// the scope (drift reconciliation).
	Principals(ctx context.Context, scope, roleDefinitionID string) ([]string, error)
}
