package brokertest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// Every write through a wrapped port passes Before and, done, After with
// its step; reads pass no fault point; a Before error stops the call, an
// After error comes back with the write done.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	var points []string
	boom := errors.New("boom")
	var failBefore, failAfter string
	f := &brokertest.Faults{
		Before: func(step string) error {
			points = append(points, "before "+step)
			if step == failBefore {
				return boom
			}
			return nil
		},
		After: func(step string) error {
			points = append(points, "after "+step)
			if step == failAfter {
				return boom
			}
			return nil
		},
	}
	d := brokertest.NewSeeded()
	rbac := brokertest.NewRBAC()
	dir, pim, arm := f.Directory(d), f.PIM(d), f.RoleAssignments(rbac)
	const scope, role = "/subscriptions/s/resourceGroups/rg", "r"

	if _, err := dir.LookupUser(ctx, seed.UserN01); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.MemberOfAny(ctx, seed.UserN01, []string{seed.GroupAKSDefault}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pim.PIMEndTime(ctx, seed.GroupAKSAdmin, seed.UserN01); err != nil {
		t.Fatal(err)
	}
	if _, err := arm.Holds(ctx, scope, role, seed.UserN01); err != nil {
		t.Fatal(err)
	}
	if _, err := arm.Principals(ctx, scope, role); err != nil {
		t.Fatal(err)
	}
	if len(points) != 0 {
		t.Fatalf("reads passed fault points %v", points)
	}

	steps := []struct {
		step  string
		write func() error
	}{
		{brokertest.StepAdd, func() error { _, err := dir.AddMember(ctx, seed.GroupAKSAdmin, seed.UserN01); return err }},
		{brokertest.StepRemove, func() error { _, err := dir.RemoveMember(ctx, seed.GroupAKSAdmin, seed.UserN01); return err }},
		{brokertest.StepRevoke, func() error { return dir.RevokeSessions(ctx, seed.UserN01) }},
		{brokertest.StepAdd, func() error {
			_, _, err := pim.AssignPIM(ctx, seed.GroupAKSAdmin, seed.UserN01, time.Hour, "j")
			return err
		}},
		{brokertest.StepRemove, func() error { return pim.RemovePIM(ctx, seed.GroupAKSAdmin, seed.UserN01) }},
		{brokertest.StepAdd, func() error { _, err := arm.Assign(ctx, scope, role, seed.UserN01, "a-1"); return err }},
		{brokertest.StepRemove, func() error { _, err := arm.Delete(ctx, scope, "a-1"); return err }},
	}
	for i, s := range steps {
		points, failBefore, failAfter = nil, "", ""
		if err := s.write(); err != nil || !slices.Equal(points, []string{"before " + s.step, "after " + s.step}) {
			t.Fatalf("write %d: %v, points %v", i, err, points)
		}
	}

	// Before fails: no call. After fails: the write is done.
	points, failBefore = nil, brokertest.StepAdd
	if _, err := dir.AddMember(ctx, seed.GroupAKSAdmin, seed.UserN02); !errors.Is(err, boom) || d.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) {
		t.Fatalf("before: %v, member %v", err, d.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02))
	}
	if n := d.Calls(brokertest.MAddMember); n != 1 || !slices.Equal(points, []string{"before " + brokertest.StepAdd}) {
		t.Fatalf("before: %d calls, points %v", n, points)
	}
	points, failBefore, failAfter = nil, "", brokertest.StepAdd
	if _, err := dir.AddMember(ctx, seed.GroupAKSAdmin, seed.UserN02); !errors.Is(err, boom) || !d.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) {
		t.Fatalf("after: %v, member %v", err, d.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02))
	}

	// No faults: the port itself.
	var none *brokertest.Faults
	if none.Directory(d) != d || none.PIM(d) != d || none.RoleAssignments(rbac) != rbac {
		t.Fatal("nil Faults wrapped a port")
	}
}
