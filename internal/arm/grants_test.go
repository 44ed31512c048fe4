package arm

import (
	"net/url"
	"strings"
	"testing"
)

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
