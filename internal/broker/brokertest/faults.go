package brokertest

import (
	"context"
	"time"

	"github.com/jitaccess/jitaccess/internal/broker"
)

// The steps of a grant's work that Faults names: the write that gives
// access (AddMember, Assign, AssignPIM), the one that takes it away
// (RemoveMember, Delete, RemovePIM) and the session revocation
// (RevokeSessions). The names are the broker's own.
const (
	StepAdd    = "add-member"
	StepRemove = "remove-member"
	StepRevoke = "revoke-sessions"
)

// Faults are fault points around the writes the broker makes to the outside
// world: wrap a port with Directory, PIM or RoleAssignments and every write
// through it passes Before and, once it took effect, After, each with the
// step (StepAdd, StepRemove, StepRevoke) the write carries out. Reads pass
// through untouched.
//
// A non-nil error from Before is returned without making the call; one from
// After is returned in place of the call's answer, the write done (a crash,
// or a lost answer, between the write and its record). Set the functions
// before the wrapped ports are used; a nil function is no fault point.
type Faults struct {
	Before func(step string) error
	After  func(step string) error
}

func (f *Faults) call(step string, write func() error) error {
	if f.Before != nil {
		if err := f.Before(step); err != nil {
			return err
		}
	}
	if err := write(); err != nil {
		return err
	}
	if f.After != nil {
		return f.After(step)
	}
	return nil
}

// Directory wraps d; with f nil it returns d itself.
func (f *Faults) Directory(d broker.Directory) broker.Directory {
	if f == nil {
		return d
	}
	return faultyDir{d, f}
}

// PIM wraps p; with f nil it returns p itself.
func (f *Faults) PIM(p broker.PIM) broker.PIM {
	if f == nil {
		return p
	}
	return faultyPIM{p, f}
}

// RoleAssignments wraps r; with f nil it returns r itself.
func (f *Faults) RoleAssignments(r broker.RoleAssignments) broker.RoleAssignments {
	if f == nil {
		return r
	}
	return faultyRBAC{r, f}
}

type faultyDir struct {
	d broker.Directory
	f *Faults
}

func (x faultyDir) LookupUser(ctx context.Context, idOrUPN string) (broker.User, error) {
	return x.d.LookupUser(ctx, idOrUPN)
}

func (x faultyDir) MemberOfAny(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	return x.d.MemberOfAny(ctx, userID, groupIDs)
}

func (x faultyDir) AddMember(ctx context.Context, groupID, userID string) (added bool, err error) {
	err = x.f.call(StepAdd, func() error {
		added, err = x.d.AddMember(ctx, groupID, userID)
		return err
	})
	return added, err
}

func (x faultyDir) RemoveMember(ctx context.Context, groupID, userID string) (removed bool, err error) {
	err = x.f.call(StepRemove, func() error {
		removed, err = x.d.RemoveMember(ctx, groupID, userID)
		return err
	})
	return removed, err
}

func (x faultyDir) RevokeSessions(ctx context.Context, userID string) error {
	return x.f.call(StepRevoke, func() error { return x.d.RevokeSessions(ctx, userID) })
}

type faultyPIM struct {
	p broker.PIM
	f *Faults
}

func (x faultyPIM) AssignPIM(ctx context.Context, groupID, userID string, duration time.Duration, justification string) (requestID string, already bool, err error) {
	err = x.f.call(StepAdd, func() error {
		requestID, already, err = x.p.AssignPIM(ctx, groupID, userID, duration, justification)
		return err
	})
	return requestID, already, err
}

func (x faultyPIM) RemovePIM(ctx context.Context, groupID, userID string) error {
	return x.f.call(StepRemove, func() error { return x.p.RemovePIM(ctx, groupID, userID) })
}

func (x faultyPIM) PIMEndTime(ctx context.Context, groupID, userID string) (time.Time, bool, error) {
	return x.p.PIMEndTime(ctx, groupID, userID)
}

type faultyRBAC struct {
	r broker.RoleAssignments
	f *Faults
}

func (x faultyRBAC) Assign(ctx context.Context, scope, roleDefinitionID, principalID, name string) (created bool, err error) {
	err = x.f.call(StepAdd, func() error {
		created, err = x.r.Assign(ctx, scope, roleDefinitionID, principalID, name)
		return err
	})
	return created, err
}

func (x faultyRBAC) Delete(ctx context.Context, scope, name string) (removed bool, err error) {
	err = x.f.call(StepRemove, func() error {
		removed, err = x.r.Delete(ctx, scope, name)
		return err
	})
	return removed, err
}

func (x faultyRBAC) Holds(ctx context.Context, scope, roleDefinitionID, principalID string) (bool, error) {
	return x.r.Holds(ctx, scope, roleDefinitionID, principalID)
}

func (x faultyRBAC) Principals(ctx context.Context, scope, roleDefinitionID string) ([]string, error) {
	return x.r.Principals(ctx, scope, roleDefinitionID)
}
