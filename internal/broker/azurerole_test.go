package broker_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/arm/armid"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/broker/brokertest"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// azure-role grants (docs/design.md, The contract (profiles)): a role assignment to the requester at the
// profile's scope, through the same membership protocol as group grants.

const (
	testCluster   = "/subscriptions/5b5b0000-0000-4000-8000-000000000001/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"
	testRole      = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b" // Azure Kubernetes Service RBAC Cluster Admin
	testNamespace = "jit-test"
)

func roleProfile() access.Profile {
	p := adminProfile()
	p.Name, p.TargetGroupID = "aks-admin-role", ""
	p.Activation, p.Scope, p.RoleDefinitionID = access.ActivationAzureRole, testCluster, testRole
	return p
}

type roleEnv struct {
	*env
	rbac *brokertest.RBAC
}

// newRoleEnv wires a broker to the seeded tenant and an ARM fake through
// faults (nil: none).
func newRoleEnv(t *testing.T, faults *brokertest.Faults) *roleEnv {
	t.Helper()
	clock := brokertest.NewClock(start)
	e := &env{t: t, ctx: t.Context(), dir: brokertest.NewSeeded(), clock: clock, store: newStore(clock)}
	re := &roleEnv{env: e, rbac: brokertest.NewRBAC()}
	e.b = broker.New(e.store, faults.Directory(e.dir), groupSet{profiles{"aks-admin": adminProfile(), "aks-admin-role": roleProfile()}}, clock, broker.Options{
		ARM: faults.RoleAssignments(re.rbac), AssignmentNamespace: testNamespace, Members: e.dir.MembersPort(), ReplicationWindow: testWindow})
	return re
}

func (e *roleEnv) request(rid, requester, duration string) []byte {
	d := map[string]any{"requestId": rid, "requester": requester, "profile": "aks-admin-role", "justification": "incident 7"}
	if duration != "" {
		d["duration"] = duration
	}
	return body(e.nextID(), access.TypeRequested, d)
}

func (e *roleEnv) activateRole(rid, requester, duration string) *access.Request {
	e.t.Helper()
	e.handle(e.request(rid, requester, duration))
	e.handle(e.approveBody(rid, seed.UPN("p01")))
	return e.want(rid, access.Active)
}

func name(rid string) string { return armid.AssignmentName(testNamespace + "/" + rid) }

// every write went to the profile's scope, role and requester.
func (e *roleEnv) wantOnlyProfileScope() {
	e.t.Helper()
	for _, a := range e.rbac.Assignments() {
		if a.Scope != testCluster || a.RoleDefinitionID != testRole {
			e.t.Fatalf("assignment outside the profile's scope and role: %+v", a)
		}
	}
	for _, w := range e.dir.Writes() {
		if w.Op != brokertest.MRevokeSessions {
			e.t.Fatalf("a Graph membership write for an azure-role grant: %+v", w)
		}
	}
}

func TestAzureRoleLifecycle(t *testing.T) {
	e := newRoleEnv(t, nil)
	r := e.activateRole("r-1", seed.UPN("n01"), "PT30M")
	if r.GroupID != "" || r.Scope != testCluster || r.RoleDefinitionID != testRole || !slices.Contains(types(r), access.HMembershipAdded) {
		t.Fatalf("active: %+v", r)
	}
	if !e.rbac.Has(testCluster, testRole, seed.UserN01) || e.rbac.Assignments()[0].Name != name("r-1") {
		t.Fatalf("assignment: %+v", e.rbac.Assignments())
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	r = e.want("r-1", access.Expired, access.HRequested, access.HApproved, access.HActivated, access.HMembershipAdded,
		access.HExpired, access.HMembershipRemoved, access.HSessionsRevoked)
	if e.rbac.Has(testCluster, testRole, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("the assignment outlived the grant")
	}
	if want := r.EndsAt.Add(broker.DefaultRBACPropagation); !r.AccessGoneBy.Equal(want) {
		t.Fatalf("accessGoneBy %v, want %v (the end + the RBAC caches' bound)", r.AccessGoneBy, want)
	}
	e.wantOnlyProfileScope()
}

func TestAccessGoneByGroupGrant(t *testing.T) {
	e := newEnv(t, nil)
	r := e.activate("r-1", seed.UPN("n01"), "PT30M")
	e.clock.Set(r.EndsAt.Add(20 * time.Second))
	e.sweep()
	r = e.want("r-1", access.Expired)
	if want := r.EndsAt.Add(20 * time.Second).Add(broker.DefaultTokenLifetime); !r.AccessGoneBy.Equal(want) {
		t.Fatalf("accessGoneBy %v, want %v (when the end was carried out + the token lifetime)", r.AccessGoneBy, want)
	}
	if pending := e.get("r-1"); pending.AccessGoneBy.IsZero() {
		t.Fatal("no accessGoneBy")
	}
	e.handle(e.requestBody("r-2", seed.UPN("n02"), ""))
	e.handle(body(e.nextID(), access.TypeDenied, map[string]any{"requestId": "r-2", "approver": seed.UPN("p01"), "reason": "no"}))
	if d := e.want("r-2", access.Denied); !d.AccessGoneBy.IsZero() {
		t.Fatal("accessGoneBy on a request that never gave access")
	}
}

func TestAzureRolePreExistingAssignmentKept(t *testing.T) {
	e := newRoleEnv(t, nil)
	e.rbac.Add(brokertest.Assignment{Name: "0ad00000-0000-4000-8000-000000000001", Scope: testCluster, RoleDefinitionID: testRole, PrincipalID: seed.UserN01})
	r := e.activateRole("r-1", seed.UPN("n01"), "PT30M")
	if slices.Contains(types(r), access.HMembershipAdded) || r.History[len(r.History)-1].Detail != access.DetailPreExisting {
		t.Fatalf("history %+v", r.History)
	}
	e.clock.Set(r.EndsAt)
	e.sweep()
	e.want("r-1", access.Expired)
	if !e.rbac.Has(testCluster, testRole, seed.UserN01) || e.rbac.Calls(brokertest.MDelete) != 0 || e.dir.RevokedFor(seed.UserN01) != 0 {
		t.Fatal("the assignment the user had before was deleted")
	}
}

func TestAzureRoleOverlappingGrants(t *testing.T) {
	e := newRoleEnv(t, nil)
	r1 := e.activateRole("r-1", seed.UPN("n01"), "PT30M")
	e.clock.Advance(5 * time.Minute)
	r2 := e.activateRole("r-2", seed.UPN("n01"), "PT1H")
	if slices.Contains(types(r2), access.HMembershipAdded) || len(e.rbac.Assignments()) != 1 {
		t.Fatalf("second grant: %v, %d assignments", types(r2), len(e.rbac.Assignments()))
	}
	e.clock.Set(r1.EndsAt)
	e.sweep()
	e.want("r-1", access.Expired)
	if !e.rbac.Has(testCluster, testRole, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 0 {
		t.Fatal("the first end took away what the second grant holds")
	}
	e.clock.Set(r2.EndsAt)
	e.sweep()
	e.want("r-2", access.Expired)
	if e.rbac.Has(testCluster, testRole, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("the assignment outlived the last grant")
	}
	e.wantOnlyProfileScope()
}

func TestAzureRoleRevokeAndCancel(t *testing.T) {
	for _, tc := range []struct {
		typ, by string
		want    access.State
	}{{access.TypeRevoked, seed.UPN("p03"), access.Revoked}, {access.TypeCancelled, seed.UserN01, access.Cancelled}} {
		t.Run(string(tc.want), func(t *testing.T) {
			e := newRoleEnv(t, nil)
			e.activateRole("r-1", seed.UPN("n01"), "PT1H")
			e.clock.Advance(time.Minute)
			e.handle(body(e.nextID(), tc.typ, map[string]any{"requestId": "r-1", "by": tc.by, "reason": "done"}))
			e.want("r-1", tc.want)
			if e.rbac.Has(testCluster, testRole, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
				t.Fatal("not taken away")
			}
		})
	}
}

// A crash at every ARM step (before and after each call): the sweep
// finishes the work; one assignment made, one deleted, sessions revoked.
func TestAzureRoleCrashAtEveryStep(t *testing.T) {
	for _, step := range []string{brokertest.StepAdd, brokertest.StepRemove, brokertest.StepRevoke} {
		for _, when := range []string{"before", "after"} {
			t.Run(when+" "+step, func(t *testing.T) {
				var mu sync.Mutex
				armed := true
				var e *roleEnv
				crash := func(s string) error {
					mu.Lock()
					defer mu.Unlock()
					if !armed || s != step {
						return nil
					}
					armed = false
					e.store.SetHook(func(string) error { return errCrash })
					return errCrash
				}
				faults := &brokertest.Faults{}
				if when == "before" {
					faults.Before = crash
				} else {
					faults.After = crash
				}
				e = newRoleEnv(t, faults)
				e.handle(e.request("r-1", seed.UPN("n01"), "PT30M"))
				_ = e.b.HandleEvent(e.ctx, e.approveBody("r-1", seed.UPN("p01")))
				e.store.SetHook(nil)
				for range 3 {
					e.clock.Advance(access.WorkGrace + time.Second)
					_ = e.b.Sweep(e.ctx)
				}
				r := e.want("r-1", access.Active)
				e.clock.Set(r.EndsAt)
				_ = e.b.Sweep(e.ctx)
				e.store.SetHook(nil)
				for range 3 {
					e.clock.Advance(access.WorkGrace + time.Second)
					_ = e.b.Sweep(e.ctx)
				}
				e.want("r-1", access.Expired)
				created, deleted := 0, 0
				for _, w := range e.rbac.Writes() {
					if w.Changed && w.Method == brokertest.MAssign {
						created++
					}
					if w.Changed && w.Method == brokertest.MDelete {
						deleted++
					}
				}
				if created != 1 || deleted != 1 || e.rbac.Has(testCluster, testRole, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) < 1 {
					t.Fatalf("created %d deleted %d revoked %d; writes %+v", created, deleted, e.dir.RevokedFor(seed.UserN01), e.rbac.Writes())
				}
			})
		}
	}
}

func TestAzureRoleTransientARM(t *testing.T) {
	e := newRoleEnv(t, nil)
	e.rbac.Fail(brokertest.MAssign, brokertest.Transient(brokertest.MAssign))
	e.handle(e.request("r-1", seed.UPN("n01"), "PT30M"))
	if err := e.b.HandleEvent(e.ctx, e.approveBody("r-1", seed.UPN("p01"))); !fault.Transient(err) {
		t.Fatalf("approve: %v, want transient", err)
	}
	e.clock.Advance(2 * time.Minute)
	e.sweep()
	r := e.want("r-1", access.Active)
	e.rbac.Fail(brokertest.MDelete, brokertest.Transient(brokertest.MDelete))
	e.clock.Set(r.EndsAt)
	_ = e.b.Sweep(e.ctx)
	e.want("r-1", access.Ending)
	e.clock.Advance(time.Minute)
	e.sweep()
	e.want("r-1", access.Expired)
	if e.rbac.Has(testCluster, testRole, seed.UserN01) || e.dir.RevokedFor(seed.UserN01) != 1 {
		t.Fatal("not taken away after the transient failures")
	}
}

// Drift reconciliation of the scope's assignments: one deleted by hand ends
// its grant (after a confirming read), a leftover of jitaccess's is deleted,
// an administrator's own assignment is never touched.
func TestAzureRoleReconciliation(t *testing.T) {
	e := newRoleEnv(t, nil)
	e.activateRole("r-1", seed.UPN("n01"), "PT1H")
	r2 := e.activateRole("r-2", seed.UPN("n02"), "PT10M")
	standing := brokertest.Assignment{Name: "0ad00000-0000-4000-8000-000000000009", Scope: testCluster, RoleDefinitionID: testRole, PrincipalID: seed.UserS01}
	e.rbac.Add(standing)
	// Someone deletes r-1's assignment; r-2's delete fails for good.
	if _, err := e.rbac.Delete(e.ctx, testCluster, name("r-1")); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.sweep()
	e.clock.Advance(time.Minute)
	e.sweep()
	if got := e.want("r-1", access.Revoked); !strings.Contains(got.Reason, "vanished") {
		t.Fatalf("reason %q", got.Reason)
	}
	e.rbac.Fail(brokertest.MDelete, brokertest.Permanent(brokertest.MDelete))
	e.clock.Set(r2.EndsAt)
	e.sweep()
	e.want("r-2", access.Failed)
	e.clock.Advance(time.Minute)
	e.sweep()
	if e.rbac.Has(testCluster, testRole, seed.UserN02) {
		t.Fatal("leftover assignment not deleted")
	}
	if !e.rbac.Has(testCluster, testRole, seed.UserS01) {
		t.Fatal("an administrator's assignment was deleted")
	}
	e.wantOnlyProfileScope()
}
