package brokertest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Method names of the PIM and members fakes (for Fail and Calls).
const (
	MAssignPIM     = "AssignPIM"
	MRemovePIM     = "RemovePIM"
	MPIMEndTime    = "PIMEndTime"
	MDirectMembers = "DirectMembers"
)

// ErrPIMPolicy is what AssignPIM answers when a refusal is set with
// RefusePIM: a permanent error carrying the reason.
var ErrPIMPolicy = errors.New("RoleAssignmentRequestPolicyValidationFailed")

type pimKey struct{ g, u string }

func (d *Dir) pim() map[pimKey]time.Time {
	if d.pimEnds == nil {
		d.pimEnds = map[pimKey]time.Time{}
	}
	return d.pimEnds
}

// SetPIMEnd records an active PIM membership of user in group ending at end
// (also making the user a direct member), as a portal activation would.
func (d *Dir) SetPIMEnd(group, user string, end time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setPIMLocked(pimKey{strings.ToLower(group), strings.ToLower(user)}, end, true)
	d.setLocked(group, user, true)
}

// EndPIM ends the user's PIM membership as PIM would (member removed).
func (d *Dir) EndPIM(group, user string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setPIMLocked(pimKey{strings.ToLower(group), strings.ToLower(user)}, time.Time{}, false)
	d.setLocked(group, user, false)
}

// RefusePIM makes AssignPIM refuse with reason (permanent); "" clears it.
func (d *Dir) RefusePIM(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pimRefusal = reason
}

var _ broker.PIM = (*Dir)(nil)

// AssignPIM creates a time-bound PIM membership (adminAssign).
func (d *Dir) AssignPIM(ctx context.Context, groupID, userID string, duration time.Duration, justification string) (string, bool, error) {
	if err := d.enter(ctx, MAssignPIM, groupID, userID); err != nil {
		return "", false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pimRefusal != "" {
		return "", false, fault.Wrap(fault.ErrPermanent, "pim adminAssign", errors.New(d.pimRefusal))
	}
	k := pimKey{strings.ToLower(groupID), strings.ToLower(userID)}
	if _, ok := d.pim()[k]; ok {
		return "", true, nil
	}
	d.setPIMLocked(k, time.Now().Add(duration), true)
	d.setLocked(groupID, userID, true)
	d.writes = append(d.writes, Write{Op: MAssignPIM, GroupID: k.g, UserID: k.u, Changed: true})
	return "req-" + k.u, false, nil
}

// RemovePIM ends the PIM membership (adminRemove); none is success.
func (d *Dir) RemovePIM(ctx context.Context, groupID, userID string) error {
	if err := d.enter(ctx, MRemovePIM, groupID, userID); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := pimKey{strings.ToLower(groupID), strings.ToLower(userID)}
	_, ok := d.pim()[k]
	if ok {
		d.setPIMLocked(k, time.Time{}, false)
		d.setLocked(groupID, userID, false)
	}
	d.writes = append(d.writes, Write{Op: MRemovePIM, GroupID: k.g, UserID: k.u, Changed: ok})
	return nil
}

// PIMEndTime reads the end of the user's PIM membership (as of a recent
// moment under a replica lag).
func (d *Dir) PIMEndTime(ctx context.Context, groupID, userID string) (time.Time, bool, error) {
	if err := d.enter(ctx, MPIMEndTime, groupID, userID); err != nil {
		return time.Time{}, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	end, ok := d.pimEndLocked(d.rep.view(), pimKey{strings.ToLower(groupID), strings.ToLower(userID)})
	return end, ok, nil
}

// MembersPort returns the directory as the broker's Members port (Dir's own
// DirectMembers is the test helper without context; the port's lags under a
// replica lag).
func (d *Dir) MembersPort() broker.Members { return membersPort{d} }

type membersPort struct{ d *Dir }

func (m membersPort) DirectMembers(ctx context.Context, groupID string) ([]string, error) {
	if err := m.d.enter(ctx, MDirectMembers, groupID); err != nil {
		return nil, err
	}
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.d.membersLocked(m.d.rep.view(), strings.ToLower(groupID)), nil
}
