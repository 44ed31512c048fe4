package policy

import (
	"testing"

	"github.com/jitaccess/jitaccess/internal/seed"
)

// The sample profiles shipped with the repository load and target the seeded tenant.
func TestSampleProfilesLoad(t *testing.T) {
	s, err := LoadFile("../../profiles.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.Profile("aks-admin")
	if !ok || p.TargetGroupID != seed.GroupAKSAdmin || p.ApprovalsRequired != 1 || !p.RevokeSessionsOnEnd {
		t.Fatalf("aks-admin: %+v", p)
	}
	if got := s.ForGroup(seed.GroupAKSAdmin); len(got) != 2 {
		t.Fatalf("profiles on aks-admin: %d", len(got))
	}
	// The azure-role profile targets the simulated cluster (internal/armsim).
	r, ok := s.Profile("aks-admin-role")
	if rt := s.RoleTargets(); !ok || len(rt) != 1 || r.Scope != seed.AKSCluster || r.RoleDefinitionID != seed.RoleAKSRBACClusterAdmin || rt[0].Key != r.TargetKey() {
		t.Fatalf("aks-admin-role: %+v, targets %+v", r, rt)
	}
}
