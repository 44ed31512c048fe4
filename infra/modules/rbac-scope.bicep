// azure-role profiles (docs/design.md, The contract (profiles) and Operations): the app's identity may create and delete role assignments
// of the profiles' role definitions, to users, at one AKS cluster — and nothing else. It holds
// "Role Based Access Control Administrator" on that cluster only (namespace scopes are below
// it), with a condition (ABAC, conditionVersion 2.0) that allows the write of an assignment only
// for the listed roles and principal type User (@Request attributes), and its delete only for an
// assignment of those roles to a user (@Resource attributes). Built-in role id and the condition's
// attributes:
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles#role-based-access-control-administrator
// https://learn.microsoft.com/azure/role-based-access-control/conditions-authorization-actions-attributes
targetScope = 'resourceGroup'

@description('The AKS cluster (in this resource group) the azure-role profiles\' scopes are, or are under.')
param clusterName string

@minLength(1)
@description('GUIDs of the role definitions the azure-role profiles grant there (e.g. Azure Kubernetes Service RBAC Cluster Admin).')
param roleDefinitionIds array

@description('Object id of the app\'s managed identity.')
param principalId string

var roles = {
  roleBasedAccessControlAdministrator: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'
}

var roleList = join(roleDefinitionIds, ', ')

// Writes: only assignments of the listed roles to users. Deletes: only such assignments. Every
// other action the role allows (none besides roleAssignments/read|write|delete) is unaffected.
var condition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleList}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'User\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleList}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'User\'}))'

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' existing = {
  name: clusterName
}

resource rbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, roles.roleBasedAccessControlAdministrator)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.roleBasedAccessControlAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: condition
    conditionVersion: '2.0'
    description: 'jitaccess: create and delete only the azure-role profiles\' role assignments, to users, at this cluster'
  }
}
