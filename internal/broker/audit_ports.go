package broker

import (
	"context"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// PIM is the PIM for Groups part of Graph (DESIGN §7) the broker uses for
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
// its service principal object id (DESIGN §6a "Own changes").
type Self struct {
	AppID    string
	ObjectID string
}

// GroupProfiles is what audit handling and reconciliation need of the
// profile set: the profiles of a target group, and all target groups.
// policy.Set implements it.
type GroupProfiles interface {
	ForGroup(groupID string) []access.Profile
	TargetGroups() []string
}

// RequestLister lists requests (the store's read side), used by drift
// reconciliation to find the active grants.
type RequestLister interface {
	ListRequests(ctx context.Context, f ListFilter) (ListPage, error)
}
