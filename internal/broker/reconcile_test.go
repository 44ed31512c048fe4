package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func TestReconcileVanishedMemberRevokes(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.dir.UnsetMember(seed.GroupAKSAdmin, seed.UserN01) // removed by hand, audit record lost
	e.clock.Advance(time.Minute)
	e.sweep()
	// One listing decides nothing: a second read after the replication
	// window must confirm it (docs/design.md, real directory rule 1).
	e.want("r-1", access.Active)
	e.clock.Advance(broker.DefaultReplicationWindow)
	e.sweep()
	r := e.want("r-1", access.Revoked)
	if r.Reason == "" || !slices.Contains(types(r), access.HSessionsRevoked) || r.History[len(r.History)-2].Actor != "unknown" {
		t.Fatalf("history %+v", r.History)
	}
	e.sweep()
	if e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatalf("revocations %d", e.dir.RevokedFor(seed.UserN01))
	}
	// The standing member s01 is never touched.
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserS01) {
		t.Fatal("standing member removed")
	}
}

func TestReconcileLeftoverRemoved(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.clock.Advance(time.Hour)
	e.dir.Fail(brokertest.MRemoveMember, brokertest.Permanent(brokertest.MRemoveMember))
	e.sweep() // the removal fails for good; reconciliation repairs it
	e.sweep()
	r := e.want("r-1", access.Failed)
	if e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) || !slices.Contains(types(r), access.HMembershipRemoved) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatalf("leftover not repaired: history %v", types(r))
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); len(l.Grants) != 0 {
		t.Fatalf("ledger %v", l.Grants)
	}
	// An unexplained member (no ledger) is left alone.
	e.dir.SetMember(seed.GroupAKSAdmin, seed.UserN02)
	e.sweep()
	if !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) {
		t.Fatal("unexplained member removed")
	}
}

func TestReconcileBudgetRoundRobin(t *testing.T) {
	e := newAuditEnv(t, nil)
	e.sweep()
	e.sweep()
	if n := e.dir.Calls(brokertest.MDirectMembers); n != 2 {
		t.Fatalf("list calls %d, want 2", n)
	}
}
