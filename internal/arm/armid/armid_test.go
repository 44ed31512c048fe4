package armid

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
		ok   bool
	}{
		{cluster, Scope{SubscriptionID: sub, ResourceGroup: rg, Cluster: "aks1"}, true},
		{nsScope, Scope{SubscriptionID: sub, ResourceGroup: rg, Cluster: "aks1", Namespace: "team-a"}, true},
		{strings.ToLower(strings.ToUpper(cluster[:60])) + cluster[60:], Scope{SubscriptionID: sub, ResourceGroup: rg, Cluster: "aks1"}, true},
		{"/subscriptions/" + strings.ToUpper(sub) + "/resourcegroups/RG.(prod)_1/providers/microsoft.containerservice/managedclusters/Aks_Prod-1",
			Scope{SubscriptionID: sub, ResourceGroup: "RG.(prod)_1", Cluster: "Aks_Prod-1"}, true},
		{"/subscriptions/" + sub + "/resourceGroups/grüne-gruppe/providers/Microsoft.ContainerService/managedClusters/c", Scope{SubscriptionID: sub, ResourceGroup: "grüne-gruppe", Cluster: "c"}, true},
		{"", Scope{}, false},
		{cluster + "/", Scope{}, false},
		{strings.TrimPrefix(cluster, "/"), Scope{}, false},
		{subScope, Scope{}, false},
		{rgScope, Scope{}, false},
		{"/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg./providers/Microsoft.ContainerService/managedClusters/c", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/r g/providers/Microsoft.ContainerService/managedClusters/c", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/c", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/-c", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c?api-version=1", Scope{}, false},
		{"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/" + strings.Repeat("a", 64), Scope{}, false},
		{cluster + "/namespaces/Team-A", Scope{}, false},
		{cluster + "/namespaces/..", Scope{}, false},
		{cluster + "/namespaces/a%2Fb", Scope{}, false},
		{cluster + "/agentPools/pool1", Scope{}, false},
		{cluster + "/namespaces/a/pods/b", Scope{}, false},
	}
	for _, tc := range tests {
		got, err := ParseScope(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Fatalf("ParseScope(%q) = %+v, %v", tc.in, got, err)
		}
		if tc.ok {
			// String is the canonical id, and parses back to the same.
			back, err := ParseScope(got.String())
			if err != nil || back != got {
				t.Fatalf("round trip of %q: %q %v", tc.in, got.String(), err)
			}
		}
	}
	if s, _ := ParseScope(strings.ToLower(cluster)); s.String() != cluster {
		t.Fatalf("canonical %q", s.String())
	}
}

func TestRoleDefinitionIDs(t *testing.T) {
	for _, id := range []string{
		roleAdmin, strings.ToUpper(roleAdmin), fullAdmin,
		"/providers/Microsoft.Authorization/roleDefinitions/" + roleAdmin,
		strings.ToLower(fullAdmin),
	} {
		if g, err := RoleDefinitionGUID(id); err != nil || g != roleAdmin {
			t.Fatalf("RoleDefinitionGUID(%q) = %q, %v", id, g, err)
		}
	}
	for _, id := range []string{"", "Cluster Admin", "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/" + roleAdmin,
		fullAdmin + "/x", "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleAssignments/" + roleAdmin} {
		if _, err := RoleDefinitionGUID(id); err == nil {
			t.Fatalf("RoleDefinitionGUID(%q) accepted", id)
		}
	}
	for _, tc := range []struct{ scope, role, want string }{
		{cluster, roleAdmin, fullAdmin},
		{nsScope, strings.ToUpper(roleAdmin), fullAdmin},
		{cluster, fullAdmin, fullAdmin},
		{cluster, "/providers/Microsoft.Authorization/roleDefinitions/" + strings.ToUpper(roleAdmin), "/providers/Microsoft.Authorization/roleDefinitions/" + roleAdmin},
	} {
		if got, err := RoleDefinitionResourceID(tc.scope, tc.role); err != nil || got != tc.want {
			t.Fatalf("RoleDefinitionResourceID(%q, %q) = %q, %v", tc.scope, tc.role, got, err)
		}
	}
	if err := ValidateTarget(nsScope, roleAdmin); err != nil {
		t.Fatal(err)
	}
	err := ValidateTarget(rgScope, "Cluster Admin")
	if err == nil || !strings.Contains(err.Error(), "scope") || !strings.Contains(err.Error(), "role definition") {
		t.Fatalf("both wrong: %v", err)
	}
}

func TestAssignmentName(t *testing.T) {
	// The namespace is what the comment says it is.
	if ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/jitaccess/jitaccess/azure-role-assignment")); ns != assignmentNamespace {
		t.Fatalf("namespace %s", ns)
	}
	a := AssignmentName("req-1")
	if a != "4f650383-4863-5e87-9120-5ee245d89a17" || AssignmentName("req-1") != a {
		t.Fatalf("not stable: %s", a)
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 || u.Variant() != uuid.RFC4122 || a != strings.ToLower(a) || !IsGUID(a) {
		t.Fatalf("%s: %v %v", a, u.Version(), err)
	}
	seen := map[string]bool{}
	for _, id := range []string{"req-1", "req-2", "REQ-1", "", "jit/req-1", "req-1 "} {
		n := AssignmentName(id)
		if seen[n] {
			t.Fatalf("collision for %q", id)
		}
		seen[n] = true
	}
}

const (
	sub      = "5b5b0000-0000-4000-8000-000000000001"
	rg       = "rg-aks"
	cluster  = "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/aks1"
	nsScope  = cluster + "/namespaces/team-a"
	subScope = "/subscriptions/" + sub
	rgScope  = subScope + "/resourceGroups/" + rg

	roleAdmin  = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b" // Azure Kubernetes Service RBAC Cluster Admin
	roleReader = "7f6c6a51-bcf8-42ba-9220-52d62157d7db" // Azure Kubernetes Service RBAC Reader
)

var fullAdmin = "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleAdmin
