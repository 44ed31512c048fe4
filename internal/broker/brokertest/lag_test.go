package brokertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/simkit"
)

const testLag = 5 * time.Second

func lagDir(t *testing.T, seedValue int64) (*Dir, *Clock) {
	t.Helper()
	d := NewSeeded()
	clk := NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	d.SetReplicaLag(testLag, clk.Now, seedValue)
	return d, clk
}

func memberOf(t *testing.T, d *Dir, user, group string) bool {
	t.Helper()
	got, err := d.MemberOfAny(context.Background(), user, []string{group})
	if err != nil {
		t.Fatal(err)
	}
	return len(got) == 1
}

// lags checks that reads show old at the change, a mix (going back in
// time) halfway through the lag, and new once it has passed.
func lags(t *testing.T, clk *Clock, old bool, read func() bool) {
	t.Helper()
	if got := simkit.Reads(20, read); simkit.Count(got, !old) != 0 {
		t.Fatalf("reads at the change: %v", got)
	}
	clk.Advance(testLag / 2)
	if got := simkit.Reads(40, read); simkit.Count(got, old) == 0 || simkit.Count(got, !old) == 0 || !simkit.WentBack(got, !old) {
		t.Fatalf("reads halfway: %v", got)
	}
	clk.Advance(testLag / 2)
	if got := simkit.Reads(20, read); simkit.Count(got, old) != 0 {
		t.Fatalf("reads after the lag: %v", got)
	}
}

func TestLagAddMember(t *testing.T) {
	ctx := context.Background()
	d, clk := lagDir(t, 1)
	g, u := seed.GroupAKSOps, seed.UserX01
	if added, err := d.AddMember(ctx, g, u); err != nil || !added {
		t.Fatalf("add: %v %v", added, err)
	}
	// Writes answer from the truth: "already a member" right away.
	if added, err := d.AddMember(ctx, g, u); err != nil || added {
		t.Fatalf("second add: %v %v", added, err)
	}
	if !d.IsDirectMember(g, u) || !slices.Contains(d.DirectMembers(g), u) || d.WriteCount(MAddMember) != 1 || len(d.Writes()) != 2 {
		t.Fatal("accessors do not see the truth")
	}
	lags(t, clk, false, func() bool { return memberOf(t, d, u, g) })
}

func TestLagRemoveMember(t *testing.T) {
	ctx := context.Background()
	d, clk := lagDir(t, 2)
	g, u := seed.GroupAKSDefault, seed.UserN01
	if removed, err := d.RemoveMember(ctx, g, u); err != nil || !removed {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if removed, err := d.RemoveMember(ctx, g, u); err != nil || removed {
		t.Fatalf("second remove: %v %v", removed, err)
	}
	if d.IsDirectMember(g, u) || d.WriteCount(MRemoveMember) != 1 {
		t.Fatal("accessors do not see the truth")
	}
	lags(t, clk, true, func() bool { return memberOf(t, d, u, g) })
}

// The test's own changes as an administrator lag too; nested groups are
// evaluated as of the read's moment.
func TestLagAdminChangesAndNesting(t *testing.T) {
	d, clk := lagDir(t, 3)
	// p02 is in aks-approvers through approvers-nested only.
	d.UnsetMember(seed.GroupAKSApprovers, seed.GroupNestedApprovers)
	lags(t, clk, true, func() bool { return memberOf(t, d, seed.UserP02, seed.GroupAKSApprovers) })

	d.SetMember(seed.GroupAKSApprovers, seed.GroupNestedApprovers)
	d.SetMember(seed.GroupNestedApprovers, seed.UserX01)
	lags(t, clk, false, func() bool { return memberOf(t, d, seed.UserX01, seed.GroupAKSApprovers) })
}

func TestLagMembersPort(t *testing.T) {
	ctx := context.Background()
	d, clk := lagDir(t, 4)
	g := seed.GroupAKSAdmin // s01
	port := d.MembersPort()
	if _, err := d.AddMember(ctx, g, seed.UserN01); err != nil {
		t.Fatal(err)
	}
	if got := d.DirectMembers(g); !slices.Equal(got, []string{seed.UserS01, seed.UserN01}) && !slices.Equal(got, []string{seed.UserN01, seed.UserS01}) {
		t.Fatalf("accessor %v", got)
	}
	lags(t, clk, false, func() bool {
		got, err := port.DirectMembers(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(got) || !slices.Contains(got, seed.UserS01) {
			t.Fatalf("port listing %v", got)
		}
		return slices.Contains(got, seed.UserN01)
	})
	if got, _ := port.DirectMembers(ctx, g); !slices.Equal(got, d.DirectMembers(g)) {
		t.Fatalf("port %v, truth %v", got, d.DirectMembers(g))
	}
}

func TestLagPIMEndTime(t *testing.T) {
	ctx := context.Background()
	d, clk := lagDir(t, 5)
	g, u := seed.GroupAKSOps, seed.UserN01
	has := func() bool {
		_, ok, err := d.PIMEndTime(ctx, g, u)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if _, existed, err := d.AssignPIM(ctx, g, u, time.Hour, "x"); err != nil || existed {
		t.Fatalf("assign: %v %v", existed, err)
	}
	if _, existed, err := d.AssignPIM(ctx, g, u, time.Hour, "x"); err != nil || !existed {
		t.Fatalf("second assign answers from the truth: %v %v", existed, err)
	}
	lags(t, clk, false, has)

	if err := d.RemovePIM(ctx, g, u); err != nil {
		t.Fatal(err)
	}
	lags(t, clk, true, has)

	// A changed end (SetPIMEnd) is seen late as well.
	e1, e2 := clk.Now().Add(time.Hour), clk.Now().Add(2*time.Hour)
	d.SetPIMEnd(g, u, e1)
	clk.Advance(testLag)
	d.SetPIMEnd(g, u, e2)
	lags(t, clk, false, func() bool {
		end, ok, _ := d.PIMEndTime(ctx, g, u)
		if !ok || (!end.Equal(e1) && !end.Equal(e2)) {
			t.Fatalf("end %v %v", end, ok)
		}
		return end.Equal(e2)
	})
	d.EndPIM(g, u)
	lags(t, clk, true, has)
}

// Lag 0 is the truth; the same seed draws the same moments; the log
// forgets what every read already sees.
func TestLagSetup(t *testing.T) {
	ctx := context.Background()
	d, clk := lagDir(t, 6)
	if !memberOf(t, d, seed.UserN02, seed.GroupAKSDefault) {
		t.Fatal("seeded tenant not visible under lag")
	}
	d.SetReplicaLag(0, nil, 0)
	if _, err := d.AddMember(ctx, seed.GroupAKSOps, seed.UserX01); err != nil {
		t.Fatal(err)
	}
	if !memberOf(t, d, seed.UserX01, seed.GroupAKSOps) {
		t.Fatal("lag 0 read misses the add")
	}
	d.SetReplicaLag(testLag, clk.Now, 6)
	if !memberOf(t, d, seed.UserX01, seed.GroupAKSOps) {
		t.Fatal("change made before the lag was set not visible")
	}

	run := func(seedValue int64) string {
		d, clk := lagDir(t, seedValue)
		d.SetMember(seed.GroupAKSOps, seed.UserX01)
		clk.Advance(testLag / 2)
		return fmt.Sprint(simkit.Reads(30, func() bool { return memberOf(t, d, seed.UserX01, seed.GroupAKSOps) }))
	}
	if a, b := run(9), run(9); a != b {
		t.Fatalf("same seed differs:\n%s\n%s", a, b)
	}
	if a, b := run(9), run(10); a == b {
		t.Fatalf("different seeds alike: %s", a)
	}

	for range 100 {
		d.UnsetMember(seed.GroupAKSOps, seed.UserX01)
		d.SetMember(seed.GroupAKSOps, seed.UserX01)
		clk.Advance(testLag / 10)
	}
	d.mu.Lock()
	n := len(d.rep.log)
	d.mu.Unlock()
	if n > 2*10+2 {
		t.Fatalf("log holds %d entries", n)
	}
}
