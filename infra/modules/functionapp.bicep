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

@description('Client id of the sign-in app registration (infra/scripts/create-signin-app.sh); empty = App Service Authentication is not configured.')
param signInClientId string = ''
@description('OpenID issuer of the sign-in tenant, <login endpoint><tenant id>/v2.0.')
param signInIssuer string = ''
@allowed(['Return401', 'RedirectToLoginPage'])
param signInUnauthenticatedAction string = 'Return401'
@description('Client ids of further applications whose tokens may call the app (the sign-in app itself always may).')
param signInAllowedClientApplications array = []

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

// App Service Authentication (Easy Auth) with Microsoft Entra ID signs operators in (docs/design.md, The read API
// "Who may read"). On Flex Consumption the Functions host runs it in front of every function
// (it sets WEBSITE_AUTH_ENABLED, which jitaccess checks before it trusts the principal headers),
// and it removes client-supplied X-MS-CLIENT-PRINCIPAL* headers. Every request must be signed in
// except /api/health (liveness probes); unauthenticated requests get a 401 (or, with
// RedirectToLoginPage, browsers are sent to the Entra sign-in) — one setting for the whole app,
// docs/deploy.md §6. The handler then requires the app role JitAccess.Read (JIT_READ_ROLE).
// No client secret: the sign-in uses a federated credential of the app's managed identity
// (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID, set in main.bicep); no token store (jitaccess never
// needs the users' tokens); sessions of one hour.
resource signIn 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(signInClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: signInUnauthenticatedAction
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/health'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: signInClientId
          openIdIssuer: signInIssuer
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: {
          allowedAudiences: [
            'api://${signInClientId}'
            signInClientId
          ]
          defaultAuthorizationPolicy: {
            allowedApplications: union([signInClientId], signInAllowedClientApplications)
          }
        }
      }
    }
    login: {
      tokenStore: { enabled: false }
      // A removed role assignment stops a browser session within the hour (the default is 8 h).
      cookieExpiration: { convention: 'FixedTime', timeToExpiration: '01:00:00' }
    }
    httpSettings: {
      requireHttps: true
      routes: { apiPrefix: '/.auth' }
      forwardProxy: { convention: 'NoProxy' }
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
