// Package seed holds the fixed object ids of the simulated tenant from the
// seeds' scenario (groups aks-default, aks-admin, aks-approvers; users n01 and
// p01) plus users and groups that exercise the failure rules. The Graph
// simulator, the sample profiles and the tests all use these ids.
package seed

// Domain of the simulated tenant.
const Domain = "contoso.com"

// Groups.
const (
	GroupAKSDefault      = "1c1a0000-0000-4000-8000-000000000001" // aks-default: eligible for aks-admin
	GroupAKSAdmin        = "1c1a0000-0000-4000-8000-000000000002" // aks-admin: the JIT target
	GroupAKSApprovers    = "1c1a0000-0000-4000-8000-000000000003" // aks-approvers
	GroupFinanceAdmins   = "1c1a0000-0000-4000-8000-000000000004" // finance-admins: never a target
	GroupNestedApprovers = "1c1a0000-0000-4000-8000-000000000005" // member of aks-approvers
	GroupNestedDefault   = "1c1a0000-0000-4000-8000-000000000006" // member of aks-default
	GroupAKSOps          = "1c1a0000-0000-4000-8000-000000000007" // aks-ops: second target (PIM-mode profile)
)

// Users. UPN is <name>@contoso.com unless noted.
const (
	UserN01 = "5e5e0000-0000-4000-8000-000000000001" // normal user, member of aks-default
	UserP01 = "5e5e0000-0000-4000-8000-000000000002" // approver, member of aks-approvers
	UserP02 = "5e5e0000-0000-4000-8000-000000000003" // approver through nested group
	UserN02 = "5e5e0000-0000-4000-8000-000000000004" // eligible through nested group
	UserD01 = "5e5e0000-0000-4000-8000-000000000005" // disabled, member of aks-default
	UserD02 = "5e5e0000-0000-4000-8000-000000000006" // disabled, member of aks-approvers
	UserG01 = "5e5e0000-0000-4000-8000-000000000007" // guest (g01_fabrikam.com#EXT#@contoso.com), member of aks-default
	UserX01 = "5e5e0000-0000-4000-8000-000000000008" // in no group
	UserS01 = "5e5e0000-0000-4000-8000-000000000009" // standing direct member of aks-admin, member of aks-default
	UserA01 = "5e5e0000-0000-4000-8000-00000000000a" // member of aks-default and aks-approvers
	UserP03 = "5e5e0000-0000-4000-8000-00000000000b" // second approver, member of aks-approvers
)

// UPN returns the user principal name of a seeded user name ("n01" → "n01@contoso.com").
func UPN(name string) string { return name + "@" + Domain }

// GuestUPN is the UPN of the guest user g01.
const GuestUPN = "g01_fabrikam.com#EXT#@" + Domain

// The simulated AKS cluster of azure-role profiles (internal/armsim), and
// the built-in role definitions granted on it.
const (
	// Subscription and AKSCluster: the cluster's resource id is the scope.
	Subscription = "5b5b0000-0000-4000-8000-000000000001"
	AKSCluster   = "/subscriptions/" + Subscription + "/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"
	// RoleAKSRBACClusterAdmin is "Azure Kubernetes Service RBAC Cluster
	// Admin" (built-in role id).
	RoleAKSRBACClusterAdmin = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
	// RoleAKSRBACReader is "Azure Kubernetes Service RBAC Reader".
	RoleAKSRBACReader = "7f6c6a51-bcf8-42ba-9220-52d62157d7db"
)
