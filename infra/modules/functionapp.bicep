// The Function App on the Flex Consumption plan (FC1), Linux, runtime "custom" version "1.0" (the
// Flex stack definition of the Custom Handler runtime). On Flex the runtime lives in
// functionAppConfig.runtime, so FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION /
// WEBSITE_RUN_FROM_PACKAGE are not app settings (they are deprecated there). The package is
// pulled from a blob container with the user-assigned identity.
param name string
param location string
param tags object = {}
param identityId string
param hostAccountName string
param deploymentContainerName string
param maximumInstanceCount int = 40
param instanceMemoryMB int = 512
@description('vnetEnabled: the subnet (delegated to Microsoft.App/environments) of the app\'s VNet integration; empty = none.')
param virtualNetworkSubnetId string = ''
@secure()
@description('App settings as an object (name: value), built in main.bicep; secure because it carries JIT_CONTINUATION_KEY (kept out of deployment history).')
param appSettings object

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Outbound traffic to storage, Service Bus and Event Hubs goes through the virtual network
    // and their private endpoints (vnetEnabled).
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [for s in items(appSettings): { name: s.key, value: string(s.value) }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// Deployments go through Entra-authenticated publishing (azd, az functionapp deployment); basic
// (user/password) publishing credentials are switched off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
