// Two storage accounts, both Entra-only (allowSharedKeyAccess: false), TLS 1.2, no public blob access:
//   host: AzureWebJobsStorage (timer schedule monitor, Event Hubs checkpoints) and the Flex
//         Consumption deployment package container;
//   data: the jitaccess tables (JIT_TABLES_ENDPOINT), kept apart so that only the app's identity,
//         and only with Storage Table Data Contributor, touches the audit record.
//
// Network: with vnetEnabled both accounts refuse public traffic (publicNetworkAccess Disabled, no
// bypass, as Microsoft's Flex Consumption azd templates do) and are reached through private
// endpoints (host: blob; data: table) from the app's VNet integration; deployments still work
// because the platform writes the package through that integration. Without it they must accept
// traffic from every network: a Flex Consumption app without VNet integration has no fixed
// addresses and is not a "trusted service" of the storage firewall. Either way only Entra tokens
// are accepted (allowSharedKeyAccess: false).
param hostAccountName string
param dataAccountName string
param deploymentContainerName string
param location string
param tags object = {}
@description('Refuse public traffic; the accounts are then reached through private endpoints (main.bicep).')
param vnetEnabled bool = false

var common = {
  minimumTlsVersion: 'TLS1_2'
  supportsHttpsTrafficOnly: true
  allowBlobPublicAccess: false
  allowSharedKeyAccess: false
  defaultToOAuthAuthentication: true
  allowCrossTenantReplication: false
  isHnsEnabled: false
  publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
  networkAcls: vnetEnabled ? { defaultAction: 'Deny', bypass: 'None' } : { defaultAction: 'Allow', bypass: 'AzureServices' }
}

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: hostAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: common
}

resource hostBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostAccount
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobs
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource dataAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: dataAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  // Zone-redundant where offered would be better for the audit record; LRS keeps the default cheap.
  sku: { name: 'Standard_LRS' }
  properties: common
}

output hostAccountName string = hostAccount.name
output hostAccountId string = hostAccount.id
output dataAccountId string = dataAccount.id
output hostBlobEndpoint string = hostAccount.properties.primaryEndpoints.blob
output dataAccountName string = dataAccount.name
