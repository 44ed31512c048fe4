package broker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func pimMode(p *access.Profile) { p.Activation = access.ActivationPIM }

func TestPIMModeNaturalEnd(t *testing.T) {
	e := newAuditEnv(t, pimMode)
	r := e.activate("r-1", seed.UPN("n01"), "PT1H")
	if !r.PIMAssigned || e.dir.WriteCount(brokertest.MAssignPIM) != 1 || e.dir.WriteCount(brokertest.MAddMember) != 0 {
		t.Fatalf("assignment: %+v writes %+v", r, e.dir.Writes())
	}
	// PIM's own directory change arrives: it attaches, nothing new.
	e.audit(event(pimAddByMSPIM("dir-1")))
	e.clock.Advance(time.Hour)
	e.dir.EndPIM(seed.GroupAKSAdmin, seed.UserN01)
	e.sweep()
	e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HExpired, access.HSessionsRevoked)
	e.audit(event(pimEnd("pim-9", false)))
	e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HExpired, access.HSessionsRevoked)
	if e.dir.RevokedFor(seed.UserN01) != 1 || e.dir.WriteCount(brokertest.MRemovePIM) != 0 || e.dir.WriteCount(brokertest.MRemoveMember) != 0 {
		t.Fatalf("writes %+v", e.dir.Writes())
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); len(l.Grants) != 0 {
		t.Fatalf("ledger %v", l.Grants)
	}
}

func TestPIMModeEarlyCancel(t *testing.T) {
	e := newAuditEnv(t, pimMode)
	e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.handle(body(e.nextID(), access.TypeCancelled, map[string]any{"requestId": "r-1", "by": seed.UPN("n01")}))
	r := e.want("r-1", access.Cancelled)
	if slices.Contains(types(r), access.HMembershipRemoved) || !slices.Contains(types(r), access.HSessionsRevoked) {
		t.Fatalf("history %v", types(r))
	}
	if e.dir.WriteCount(brokertest.MRemovePIM) != 1 || e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("writes %+v", e.dir.Writes())
	}
}

func TestPIMModeAlreadyAssigned(t *testing.T) {
	e := newAuditEnv(t, pimMode)
	e.dir.SetPIMEnd(seed.GroupAKSAdmin, seed.UserN01, start.Add(8*time.Hour))
	e.activate("r-1", seed.UPN("n01"), "PT1H")
	e.handle(body(e.nextID(), access.TypeRevoked, map[string]any{"requestId": "r-1", "by": seed.UPN("p01"), "reason": "done"}))
	e.want("r-1", access.Revoked)
	if e.dir.WriteCount(brokertest.MRemovePIM) != 0 || e.dir.RevokedFor(seed.UserN01) != 0 || !e.dir.IsDirectMember(seed.GroupAKSAdmin, seed.UserN01) {
		t.Fatalf("pre-existing assignment touched: %+v", e.dir.Writes())
	}
}

func TestPIMModePolicyRefusal(t *testing.T) {
	e := newAuditEnv(t, pimMode)
	e.dir.RefusePIM("RoleAssignmentRequestPolicyValidationFailed: The following policy rules failed: [\"ExpirationRule\"]")
	e.handle(e.requestBody("r-1", seed.UPN("n01"), "PT1H"))
	e.handle(e.approveBody("r-1", seed.UPN("p01")))
	r := e.want("r-1", access.Failed)
	if !strings.Contains(r.Reason, "ExpirationRule") {
		t.Fatalf("reason %q", r.Reason)
	}
	e.sweep()
	if n := e.dir.Calls(brokertest.MAssignPIM); n != 1 {
		t.Fatalf("assign tried %d times", n)
	}
	if l := e.ledger(seed.GroupAKSAdmin, seed.UserN01); len(l.Grants) != 0 {
		t.Fatalf("ledger %v", l.Grants)
	}
}
