// Package armid parses and builds the Azure Resource Manager ids of azure-role
// profiles (scopes, role definitions, assignment names) without the SDK, so
// that profile validation and the domain can use them.
package armid

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// Scope is an azure-role profile's scope (docs/design.md, The contract (profiles)): an AKS cluster, or a
// Kubernetes namespace in it.
//
//	/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}
//	/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}/namespaces/{ns}
type Scope struct {
	SubscriptionID string // lower case
	ResourceGroup  string
	Cluster        string
	Namespace      string // "" for the whole cluster
}

// String is the scope's resource id, with ARM's casing of the fixed
// segments and the names as given.
func (s Scope) String() string {
	id := "/subscriptions/" + s.SubscriptionID + "/resourceGroups/" + s.ResourceGroup +
		"/providers/Microsoft.ContainerService/managedClusters/" + s.Cluster
	if s.Namespace != "" {
		id += "/namespaces/" + s.Namespace
	}
	return id
}

var (
	guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// Resource group: 1-90 letters or digits (Unicode), underscores,
	// hyphens, periods and parentheses, not ending with a period.
	rgRE = regexp.MustCompile(`^[\p{L}\p{N}_\-.()]{1,90}$`)
	// managedClusters: 1-63 alphanumerics, underscores and hyphens,
	// starting and ending with an alphanumeric.
	clusterRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`)
	// Kubernetes namespace: an RFC 1123 DNS label.
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// IsGUID reports whether s is a GUID (8-4-4-4-12 hex digits).
func IsGUID(s string) bool { return guidRE.MatchString(s) }

// ParseScope checks that s is an AKS cluster or namespace scope (see Scope)
// and returns it. The fixed segments match case-insensitively, as ARM
// ids do. Name rules: "Naming rules and restrictions for Azure resources"
// (Microsoft.Resources resourcegroups, Microsoft.ContainerService
// managedClusters) and Kubernetes namespace names (RFC 1123 labels).
//
// The SDK puts the scope into the request path as it is, unescaped: only
// scopes that pass here are ever sent.
func ParseScope(s string) (Scope, error) {
	bad := func(why string) (Scope, error) {
		return Scope{}, fmt.Errorf("scope %q: %s; want /subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}[/namespaces/{namespace}]", s, why)
	}
	if !strings.HasPrefix(s, "/") {
		return bad("does not start with /")
	}
	seg := strings.Split(s[1:], "/")
	if len(seg) != 8 && len(seg) != 10 {
		return bad("wrong number of segments")
	}
	fixed := map[int]string{0: "subscriptions", 2: "resourceGroups", 4: "providers", 5: "Microsoft.ContainerService", 6: "managedClusters", 8: "namespaces"}
	for i, want := range fixed {
		if i < len(seg) && !strings.EqualFold(seg[i], want) {
			return bad(fmt.Sprintf("segment %d is %q, not %s", i+1, seg[i], want))
		}
	}
	sc := Scope{SubscriptionID: strings.ToLower(seg[1]), ResourceGroup: seg[3], Cluster: seg[7]}
	if !IsGUID(sc.SubscriptionID) {
		return bad("the subscription id is not a GUID")
	}
	if !rgRE.MatchString(sc.ResourceGroup) || strings.HasSuffix(sc.ResourceGroup, ".") {
		return bad("not a valid resource group name")
	}
	if !clusterRE.MatchString(sc.Cluster) {
		return bad("not a valid AKS cluster name")
	}
	if len(seg) == 10 {
		sc.Namespace = seg[9]
		if !namespaceRE.MatchString(sc.Namespace) {
			return bad("not a valid Kubernetes namespace name")
		}
	}
	return sc, nil
}

var roleIDRE = regexp.MustCompile(`(?i)^(?:/subscriptions/([0-9a-f-]{36}))?/providers/Microsoft\.Authorization/roleDefinitions/([0-9a-f-]{36})$`)

// RoleDefinitionGUID returns the GUID (lower case) of a role definition
// given as a bare GUID,
// /subscriptions/{guid}/providers/Microsoft.Authorization/roleDefinitions/{guid},
// or /providers/Microsoft.Authorization/roleDefinitions/{guid} (the form ARM
// uses for built-in roles).
func RoleDefinitionGUID(id string) (string, error) {
	if IsGUID(id) {
		return strings.ToLower(id), nil
	}
	if m := roleIDRE.FindStringSubmatch(id); m != nil && IsGUID(m[2]) && (m[1] == "" || IsGUID(m[1])) {
		return strings.ToLower(m[2]), nil
	}
	return "", fmt.Errorf("role definition id %q: want a GUID or /subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{guid}", id)
}

// RoleDefinitionResourceID is the full role definition id a role assignment
// at scope is created with: a bare GUID becomes
// /subscriptions/{scope's subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}
// (the form of Microsoft's REST examples); a full id is kept, with its
// GUID in lower case.
func RoleDefinitionResourceID(scope, roleDefinitionID string) (string, error) {
	sc, err := ParseScope(scope)
	if err != nil {
		return "", err
	}
	g, err := RoleDefinitionGUID(roleDefinitionID)
	if err != nil {
		return "", err
	}
	if IsGUID(roleDefinitionID) {
		return "/subscriptions/" + sc.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + g, nil
	}
	i := strings.LastIndexByte(roleDefinitionID, '/')
	return roleDefinitionID[:i+1] + g, nil
}

// ValidateTarget checks an azure-role profile's scope and roleDefinitionId
// (for the profile validation at start).
func ValidateTarget(scope, roleDefinitionID string) error {
	_, err := ParseScope(scope)
	if _, rerr := RoleDefinitionGUID(roleDefinitionID); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// assignmentNamespace is the UUID namespace of AssignmentName: the
// version 5 UUID of the URL
// "https://github.com/jitaccess/jitaccess/azure-role-assignment" in the
// RFC 4122 URL namespace.
var assignmentNamespace = uuid.MustParse("858c0927-9a71-58ca-bfd1-658ef3181847")

// AssignmentName is the name of the role assignment a grant makes: the
// version 5 (SHA-1, RFC 4122 §4.3) UUID of requestID in the namespace
// 858c0927-9a71-58ca-bfd1-658ef3181847, lower case. The same request always
// gives the same name, so every retry of its PUT is the same write
// (ARM answers 200 for a repeat), and a DELETE by that name can only remove
// what the request made.
//
// Role assignment names are unique across subscriptions (a name in use by
// another assignment is refused with RoleAssignmentUpdateNotPermitted, RBAC
// troubleshooting guide): deployments that may see the same request ids
// (one caller-chosen id sent to two of them) should pass a
// deployment-qualified id, e.g. table prefix + "/" + request id.
func AssignmentName(requestID string) string {
	return uuid.NewSHA1(assignmentNamespace, []byte(requestID)).String()
}

// validName refuses names that are not GUIDs (ARM's rule for role
// assignment names; they are also put into the path unescaped).
