package arm

import (
	"net/url"
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

func TestGrants(t *testing.T) {
	a := Assignment{Name: "x", Scope: rgScope, RoleDefinitionID: fullAdmin, PrincipalID: userN01}
	for _, tc := range []struct {
		a           Assignment
		scope, role string
		want        bool
	}{
		{a, cluster, roleAdmin, true},                                                        // inherited from the resource group
		{a, nsScope, fullAdmin, true},                                                        // and by the namespaces
		{a, rgScope, roleAdmin, true},                                                        // at the scope itself
		{a, subScope, roleAdmin, false},                                                      // not above it
		{a, cluster, roleReader, false},                                                      // another role
		{a, strings.ToUpper(cluster), roleAdmin, true},                                       // ids are case-insensitive
		{a, rgScope + "2/providers/x/y/z", roleAdmin, false},                                 // a sibling whose name starts the same
		{Assignment{Scope: nsScope, RoleDefinitionID: roleAdmin}, cluster, roleAdmin, false}, // below does not grant above
		{Assignment{Scope: "", RoleDefinitionID: roleAdmin}, cluster, roleAdmin, false},
		{a, cluster, "bad", false},
	} {
		if got := tc.a.Grants(tc.scope, tc.role); got != tc.want {
			t.Fatalf("%+v.Grants(%q, %q) = %v", tc.a, tc.scope, tc.role, got)
		}
	}
}

func TestOrigin(t *testing.T) {
	base, _ := url.Parse("https://Management.Azure.com")
	for _, tc := range []struct {
		u    string
		same bool
	}{
		{"https://management.azure.com/subscriptions/x?$skipToken=1", true},
		{"https://management.azure.com:443/subscriptions/x", true},
		{"https://management.azure.com:8443/subscriptions/x", false},
		{"http://management.azure.com/subscriptions/x", false},
		{"https://management.azure.com.evil.example/subscriptions/x", false},
		{"https://evil.example/?https://management.azure.com", false},
	} {
		u, _ := url.Parse(tc.u)
		if got := origin(u) == origin(base); got != tc.same {
			t.Fatalf("%s: same origin %v", tc.u, got)
		}
	}
	loop, _ := url.Parse("http://127.0.0.1:7072")
	if origin(loop) != "http://127.0.0.1:7072" {
		t.Fatal(origin(loop))
	}
}
