package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/armsim"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// azure-role grants through the built binary (docs/design.md, The contract (profiles) and Operations): a role
// assignment to the requester at the simulated AKS cluster (internal/armsim,
// behind the real armauthorization SDK), through the same membership
// protocol as group grants.

func roleRequest(id, requester, duration string) map[string]string {
	return map[string]string{"requestId": id, "requester": requester, "profile": "aks-admin-role", "justification": "e2e: azure-role", "duration": duration}
}

func (e *env) hasRole(user string) bool {
	return e.arm.HasAssignment(seed.AKSCluster, seed.RoleAKSRBACClusterAdmin, user)
}

// wantOnlyClusterRole checks that every role assignment write went to the
// profile's scope and role, and that no Graph membership was written.
func (e *env) wantOnlyClusterRole() {
	e.t.Helper()
	for _, c := range e.arm.Calls() {
		if c.Method == "GET" {
			continue
		}
		if !strings.HasPrefix(strings.ToLower(c.Path), strings.ToLower(seed.AKSCluster)+"/providers/microsoft.authorization/roleassignments/") {
			e.t.Errorf("ARM write outside the profile's scope: %s %s", c.Method, c.Path)
		}
	}
	for _, a := range e.arm.Assignments() {
		if !strings.EqualFold(a.Scope, seed.AKSCluster) || !strings.HasSuffix(strings.ToLower(a.RoleDefinitionID), seed.RoleAKSRBACClusterAdmin) {
			e.t.Errorf("assignment outside the profile's scope and role: %+v", a)
		}
	}
	if n := e.graph.CountCalls("POST", "/members/$ref") + e.graph.CountCalls("DELETE", "/$ref"); n != 0 {
		e.t.Errorf("%d Graph membership writes for azure-role grants", n)
	}
}

func TestAzureRoleThroughTheBinary(t *testing.T) {
	e := newLagEnv(t, 21)
	e.arm.SetReplicaLag(replicaLag, 21)

	// Activation and expiry: the assignment made, then deleted, sessions revoked.
	e.send(access.TypeRequested, roleRequest("role-1", seed.UPN("n01"), "PT3S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "role-1", "approver": seed.UPN("p01")})
	v := e.mustGet("role-1")
	if v.State != "active" || !e.hasRole(seed.UserN01) || v.GroupID != "" {
		t.Fatalf("activation: %s %v, assigned %v", v.State, v.types(), e.hasRole(seed.UserN01))
	}
	e.sweepsFor(realWindow) // reconciliation with lagging reads: nothing vanishes
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.sweep()
	v = e.mustGet("role-1")
	if v.State != "expired" || e.hasRole(seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("expiry: %s %v, assigned %v", v.State, v.types(), e.hasRole(seed.UserN01))
	}
	raw := e.rawGet("role-1")
	if !strings.Contains(raw, `"accessGoneBy"`) || !strings.Contains(raw, `"scope":"`+seed.AKSCluster+`"`) || !strings.Contains(raw, `"roleDefinitionId":"`) {
		t.Fatalf("read API: %s", raw)
	}

	// Revoke and cancel.
	for _, c := range []struct{ typ, by, want string }{{access.TypeRevoked, seed.UPN("p03"), "revoked"}, {access.TypeCancelled, seed.UPN("n02"), "cancelled"}} {
		id := "role-" + c.want
		e.send(access.TypeRequested, roleRequest(id, seed.UPN("n02"), "PT1H"))
		e.send(access.TypeApproved, map[string]string{"requestId": id, "approver": seed.UPN("p01")})
		e.send(c.typ, map[string]string{"requestId": id, "by": c.by, "reason": "done"})
		if v := e.mustGet(id); v.State != c.want || e.hasRole(seed.UserN02) {
			t.Fatalf("%s: %s %v", id, v.State, v.types())
		}
	}

	// A pre-existing assignment (an administrator's, another name) is kept.
	standing := e.arm.AddAssignment(armsim.Assignment{Scope: seed.AKSCluster, RoleDefinitionID: seed.RoleAKSRBACClusterAdmin, PrincipalID: seed.UserS01})
	e.send(access.TypeRequested, roleRequest("role-pre", seed.UPN("s01"), "PT1S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "role-pre", "approver": seed.UPN("p01")})
	time.Sleep(1100 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("role-pre"); v.State != "expired" || !e.hasRole(seed.UserS01) || e.graph.RevokeCount(seed.UserS01) != 0 {
		t.Fatalf("pre-existing: %s %v, still assigned %v", v.State, v.types(), e.hasRole(seed.UserS01))
	}
	if _, ok := e.arm.Assignment(standing); !ok {
		t.Fatal("the administrator's assignment was deleted")
	}

	// Overlapping grants: the first end keeps the assignment, the last removes it.
	e.send(access.TypeRequested, roleRequest("role-o1", seed.UPN("a01"), "PT2S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "role-o1", "approver": seed.UPN("p01")})
	e.send(access.TypeRequested, roleRequest("role-o2", seed.UPN("a01"), "PT6S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "role-o2", "approver": seed.UPN("p01")})
	time.Sleep(2100 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("role-o1"); v.State != "expired" || !e.hasRole(seed.UserA01) || e.graph.RevokeCount(seed.UserA01) != 0 {
		t.Fatalf("first of two: %s %v, assigned %v", v.State, v.types(), e.hasRole(seed.UserA01))
	}
	o2 := e.mustGet("role-o2")
	end, _ = time.Parse(time.RFC3339Nano, o2.EndsAt)
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	e.sweep()
	if v := e.mustGet("role-o2"); v.State != "expired" || e.hasRole(seed.UserA01) || e.graph.RevokeCount(seed.UserA01) != 1 {
		t.Fatalf("last of two: %s %v, assigned %v", v.State, v.types(), e.hasRole(seed.UserA01))
	}
	e.wantOnlyClusterRole()
}

// ARM failing: throttled (429 with Retry-After) and 5xx, an answer lost after
// the write took effect; each grant still ends with its assignment deleted
// once.
func TestAzureRoleARMFaults(t *testing.T) {
	e := newEnv(t)
	e.arm.FailNext("PUT", 1, 429, time.Second)
	e.send(access.TypeRequested, roleRequest("rf-1", seed.UPN("n01"), "PT2S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "rf-1", "approver": seed.UPN("p01")})
	if v := e.mustGet("rf-1"); v.State != "active" || !e.hasRole(seed.UserN01) {
		t.Fatalf("after a 429: %s %v", v.State, v.types())
	}
	// The delete's answer is lost after it took effect, then ARM is down.
	e.arm.LoseAnswerNext("DELETE", 1, 0)
	e.arm.FailNext("DELETE", 2, 503, 0)
	time.Sleep(2100 * time.Millisecond)
	for range 6 {
		e.trySweep() // answers 500 while ARM fails (the timer tries again)
		if v := e.mustGet("rf-1"); v.State == "expired" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if v := e.mustGet("rf-1"); v.State != "expired" || e.hasRole(seed.UserN01) || e.graph.RevokeCount(seed.UserN01) != 1 {
		t.Fatalf("after lost answers and 503s: %s %v, assigned %v", v.State, v.types(), e.hasRole(seed.UserN01))
	}
	// A PUT whose answer was lost: the redelivered PUT of the same name is ours.
	e.arm.LoseAnswerNext("PUT", 1, 500)
	e.send(access.TypeRequested, roleRequest("rf-2", seed.UPN("n02"), "PT1S"))
	e.send(access.TypeApproved, map[string]string{"requestId": "rf-2", "approver": seed.UPN("p01")})
	waitUntil(t, "rf-2 active", 10*time.Second, func() bool { return e.mustGet("rf-2").State == "active" })
	time.Sleep(1100 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("rf-2"); v.State != "expired" || e.hasRole(seed.UserN02) {
		t.Fatalf("lost PUT answer: %s %v, assigned %v", v.State, v.types(), e.hasRole(seed.UserN02))
	}
	e.wantOnlyClusterRole()
}

// rawGet returns GET /api/requests/{id}'s body.
func (e *env) rawGet(id string) string {
	e.t.Helper()
	resp, err := http.Get(e.host.URL() + "/api/requests/" + id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// trySweep fires the sweep and accepts a failed invocation (a dependency
// down: the next timer tick tries again).
func (e *env) trySweep() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = e.host.FireTimer(ctx, "ExpirySweep")
}

// TestSIGKILLDuringARMCalls kills the binary while ARM holds the creation or
// the deletion of an azure-role grant's assignment, starts it again and lets
// the message come back and the sweep run: the grant ends as an undisturbed
// one, its assignment created once and deleted.
func TestSIGKILLDuringARMCalls(t *testing.T) {
	for i, p := range []struct{ name, method, phase string }{{"creating the assignment", "PUT", "approve"}, {"deleting it", "DELETE", "end"}} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			id := "kill-role-" + string(rune('a'+i))
			e.send(access.TypeRequested, roleRequest(id, seed.UserN01, "PT1H"))
			approve := e.build(access.TypeApproved, map[string]string{"requestId": id, "approver": seed.UPN("p01")})
			revoke := e.build(access.TypeRevoked, map[string]string{"requestId": id, "by": seed.UPN("p01"), "reason": "done"})
			inFlight := approve
			if p.phase == "end" {
				e.sendRaw(approve)
				if v := e.mustGet(id); v.State != "active" {
					t.Fatalf("before the kill: %s %v", v.State, v.types())
				}
				inFlight = revoke
			}
			before := e.arm.CountCalls(p.method, "roleAssignments")
			e.arm.Delay(p.method, time.Minute)
			e.host.Enqueue(inFlight)
			waitUntil(t, "the binary to call ARM", 30*time.Second, func() bool { return e.arm.CountCalls(p.method, "roleAssignments") > before })
			e.kill()
			e.arm.Delay(p.method, 0)
			e.vars["JIT_REDELIVERY_PATIENCE"] = "PT90S"
			e.start()
			e.sendRaw(inFlight)
			if p.phase == "approve" {
				e.settle(id, "active")
				e.sendRaw(revoke)
			}
			e.settle(id, "revoked")
			if e.hasRole(seed.UserN01) || e.graph.RevokeCount(seed.UserN01) < 1 {
				t.Fatalf("assigned %v, revocations %d", e.hasRole(seed.UserN01), e.graph.RevokeCount(seed.UserN01))
			}
			e.wantOnlyClusterRole()
		})
	}
}
