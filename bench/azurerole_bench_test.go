package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/arm"
	"github.com/jitaccess/jitaccess/internal/armsim"
	"github.com/jitaccess/jitaccess/internal/azuritetest"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/tablestore"
	"github.com/jitaccess/jitaccess/internal/tablestore/tablestoretest"
)

// BenchmarkAzureRoleLifecycle runs whole azure-role grants — requested,
// approved (role assignment created), expired (deleted, sessions revoked) —
// through the broker with the real ARM client (armauthorization) against
// armsim, the real Graph client against graphsim, and the Table Storage
// store against Azurite, beside membership-mode grants. It reports, per
// grant: ARM calls and Graph calls, storage round trips per event, and
// accessGoneBy − endsAt per mode (the access's honest end, docs/design.md, The read API).
func BenchmarkAzureRoleLifecycle(b *testing.B) {
	ctx := context.Background()
	n := lifecycleGrants()
	ten := newTenant(b, n)
	rsim := armsim.New(armsim.Options{Verify: ten.ids.Verify}).AddScope(seed.AKSCluster).AddRoleDefinition(seed.RoleAKSRBACClusterAdmin)
	rsim.Start()
	b.Cleanup(rsim.Close)
	rbac, err := arm.New(ten.cred, arm.Options{BaseURL: rsim.BaseURL()})
	if err != nil {
		b.Fatal(err)
	}
	trips := tablestoretest.Count(nil) // the store's round trips
	st, err := tablestore.NewFromConnectionString(azuritetest.Start(b), tablestore.Options{Prefix: azuritetest.Prefix(b), Transport: trips})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureTables(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.DeleteTables(context.Background()) })
	profiles := roleBenchProfiles(b)
	brk := broker.New(st, ten.dir, profiles, broker.SystemClock{}, broker.Options{Logger: quietLogger(), ARM: rbac, AssignmentNamespace: "bench"})

	var armCalls, graphCalls int64
	rt := map[string]int64{}
	events := map[string]int64{}
	goneBy := map[string]time.Duration{}
	deliver := func(name string, body []byte) {
		ten.sim.ResetCalls()
		rsim.ResetCalls()
		rt0 := trips.N()
		if err := brk.HandleEvent(ctx, body); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		rt[name] += trips.N() - rt0
		events[name]++
		armCalls += int64(len(rsim.Calls()))
		graphCalls += int64(len(ten.sim.Calls()))
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var ids []string
		for i := range n {
			id := fmt.Sprintf("ar-%d-%d-%d", time.Now().UnixNano(), it, i)
			ids = append(ids, id)
			deliver("requested", requested(b, id, ten.users[i], "aks-admin-role", "PT2S"))
			deliver("approved", approved(b, id))
		}
		time.Sleep(2100 * time.Millisecond)
		for _, id := range ids {
			deliver("expire", expire(b, id))
			r, err := st.GetRequest(ctx, id)
			if err != nil || r.State != access.Expired || r.AccessGoneBy.IsZero() {
				b.Fatalf("%s: %v %v", id, r, err)
			}
			goneBy["azure-role"] = r.AccessGoneBy.Sub(r.EndsAt)
		}
		if len(rsim.Assignments()) != 0 {
			b.Fatalf("%d assignments left", len(rsim.Assignments()))
		}
	}
	b.StopTimer()
	// One membership-mode grant for its accessGoneBy.
	id := fmt.Sprintf("gm-%d", time.Now().UnixNano())
	deliver("requested", requested(b, id, ten.users[0], "aks-admin", "PT1S"))
	deliver("approved", approved(b, id))
	time.Sleep(1100 * time.Millisecond)
	deliver("expire", expire(b, id))
	if r, err := st.GetRequest(ctx, id); err == nil {
		goneBy["membership"] = r.AccessGoneBy.Sub(r.EndsAt)
	}
	grants := float64(n * b.N)
	b.ReportMetric(float64(armCalls)/grants, "armcalls/grant")
	b.ReportMetric(float64(graphCalls)/grants, "graphcalls/grant")
	for _, name := range []string{"requested", "approved", "expire"} {
		b.ReportMetric(float64(rt[name])/float64(events[name]), "rt/"+name)
	}
	b.ReportMetric(goneBy["azure-role"].Minutes(), "gonebyminutes/azure-role")
	b.ReportMetric(goneBy["membership"].Minutes(), "gonebyminutes/membership")
	b.Logf("accessGoneBy − endsAt: azure-role %v (JIT_RBAC_PROPAGATION + the end's own latency), membership %v (JIT_TOKEN_LIFETIME + the same)",
		goneBy["azure-role"].Round(time.Millisecond), goneBy["membership"].Round(time.Millisecond))
}

func roleBenchProfiles(tb testing.TB) *policy.Set {
	tb.Helper()
	base := map[string]any{
		"eligibleGroupIds": []string{seed.GroupAKSDefault}, "approverGroupIds": []string{seed.GroupAKSApprovers},
		"approvalsRequired": 1, "defaultDuration": "PT1H", "maxDuration": "PT8H", "approvalTimeout": "PT24H",
		"requireJustification": true, "revokeSessionsOnEnd": true, "outOfBand": "record",
	}
	group, role := map[string]any{}, map[string]any{}
	for k, v := range base {
		group[k], role[k] = v, v
	}
	group["name"], group["targetGroupId"], group["activation"] = "aks-admin", seed.GroupAKSAdmin, "membership"
	role["name"], role["activation"], role["scope"], role["roleDefinitionId"] = "aks-admin-role", "azure-role", seed.AKSCluster, seed.RoleAKSRBACClusterAdmin
	raw, _ := json.Marshal(map[string]any{"profiles": []any{group, role}})
	s, err := policy.Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
