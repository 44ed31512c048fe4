// jitaccess — the whole deployment in one resource group (azd: `azd up` / `azd down`).
//
//   Function App (Flex Consumption FC1, runtime "custom" 1.0) running the Go custom handler
//   Storage account "host": AzureWebJobsStorage (timer locks, Event Hubs checkpoints) and the
//                           deployment package container
//   Storage account "data": the jitaccess tables (JIT_TABLES_ENDPOINT)
//   Service Bus (Standard): queue access-requests, topic for notifications
//   Event Hubs (Standard):  hub insights-logs-auditlogs fed by the Entra diagnostic setting
//                           (or an existing hub, see the existingEventHub* parameters)
//   Application Insights + Log Analytics
//   One user-assigned managed identity for everything; role assignments scoped to single resources.
//   App Service Authentication (Microsoft Entra ID) in front of the read API and the dashboard,
//   with the app registration of infra/scripts/create-signin-app.sh (signInClientId).
//
// No key, connection string with a key, or secret appears here: every data-plane connection is
// identity based (infra/infra_test.go checks this and the settings against the code).
// profiles.json is NOT a parameter: it ships inside the deployed zip next to the executable
// (`make build PROFILES=...`), see docs/deploy.md.

targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags derive from it.')
param environmentName string

@minLength(1)
@description('Region for every resource (must offer Flex Consumption).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group name (default rg-<environmentName>).')
param resourceGroupName string = ''

@description('Override for generated resource names (empty = generated).')
param functionAppName string = ''
param hostStorageAccountName string = ''
param dataStorageAccountName string = ''
param serviceBusNamespaceName string = ''
param eventHubNamespaceName string = ''
param identityName string = ''

@description('Service Bus queue for request events (JIT_REQUESTS_QUEUE).')
param requestsQueueName string = 'access-requests'

@description('Service Bus topic for outcome events (JIT_NOTIFICATIONS_TOPIC).')
param notificationsTopicName string = 'jit-notifications'

@description('Duplicate detection window of the requests queue (ISO 8601, at most P7D). Fixed at queue creation.')
param duplicateDetectionWindow string = 'PT1H'

@description('Sweep schedule, six-field NCRONTAB (JIT_SWEEP_SCHEDULE).')
param sweepSchedule string = '0 */1 * * * *'

@description('Table name prefix (JIT_TABLE_PREFIX).')
param tablePrefix string = 'jit'

@description('Graph base URL (JIT_GRAPH_BASE_URL): change for sovereign clouds.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Graph token scope (JIT_GRAPH_SCOPE); empty = derived from graphBaseUrl.')
param graphScope string = ''

@description('Azure Resource Manager endpoint for azure-role profiles (JIT_ARM_BASE_URL): change for sovereign clouds.')
param armBaseUrl string = 'https://management.azure.com'

@description('ARM token scope (JIT_ARM_SCOPE); empty = derived from armBaseUrl.')
param armScope string = ''

@description('Upper bound of an Entra access token\'s life, for accessGoneBy of group grants (JIT_TOKEN_LIFETIME, ISO 8601).')
param tokenLifetime string = 'PT90M'

@description('Upper bound for a deleted role assignment to stop authorizing, for accessGoneBy of azure-role grants (JIT_RBAC_PROPAGATION, ISO 8601): set it from your own measurement (README).')
param rbacPropagation string = 'PT10M'

@description('The AKS clusters of the azure-role profiles and the role definitions each grants: [{ subscriptionId, resourceGroup, cluster, roleDefinitionIds: [guid, ...] }]. The identity gets Role Based Access Control Administrator on each cluster only, conditioned to those roles and to users.')
param azureRoleTargets array = []

@description('Profiles file path (JIT_PROFILES_FILE); empty = profiles.json beside the executable, i.e. the one in the deployed zip.')
param profilesFile string = ''

@allowed(['debug', 'info', 'warn', 'error'])
param logLevel string = 'info'

@description('Optional Graph call budget per reconciliation sweep (JIT_RECONCILE_MAX_GRAPH_CALLS); empty = built-in default.')
param reconcileMaxGraphCalls string = ''

@description('How long before a grant ends the jit.access.expiring notification is published (ISO 8601, JIT_EXPIRING_NOTICE_LEAD); PT0S turns it off.')
param expiringNoticeLead string = 'PT10M'

@description('How long a positive approver resolution is reused (ISO 8601, JIT_APPROVER_CACHE_TTL, at most PT10M); PT0S turns the cache off.')
param approverCacheTtl string = 'PT1M'

@description('How long a redelivered request event that fails transiently is retried within the invocation before the host redelivers it (ISO 8601, JIT_REDELIVERY_PATIENCE, at most PT4M); PT0S turns it off.')
param redeliveryPatience string = 'PT2M'

@description('How long a directory read may lag a write (ISO 8601, JIT_REPLICATION_WINDOW, PT1S..PT1H): reads made sooner after jitaccess\'s own write decide nothing, and audit records are checked with Graph this long after they arrive.')
param replicationWindow string = 'PT1M'

@secure()
@description('Key for the read API continuation tokens (JIT_CONTINUATION_KEY, >= 16 chars). Default: generated at each deployment (tokens issued before a redeploy become invalid).')
param continuationKey string = newGuid()

@minValue(40)
@maxValue(1000)
@description('Flex Consumption maximum instance count (40..1000 for the custom runtime).')
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
@description('Flex Consumption instance memory (MB). The Go handler is small: 512 is enough.')
param instanceMemoryMB int = 512

@description('Existing Event Hubs namespace for the Entra audit logs (empty = create one here). With it, set the resource group and hub too.')
param existingEventHubNamespace string = ''
param existingEventHubResourceGroup string = ''
param existingEventHubName string = 'insights-logs-auditlogs'

@description('Service principal object ids of the systems that may send request events — your approval or ticketing integration, never people: a sender can assert any approver\'s decision (SECURITY.md). Azure Service Bus Data Sender on the requests queue only, principalType ServicePrincipal.')
param requestSenderPrincipalIds array = []

@description('Client id of the sign-in app registration made by infra/scripts/create-signin-app.sh (App Service Authentication with Microsoft Entra ID signs operators in to /api/requests and /api/dashboard). Empty: no sign-in is configured and those answer 401 to everyone.')
param signInClientId string = ''

@description('Tenant of the sign-in app registration (default: the tenant of this deployment).')
param signInTenantId string = tenant().tenantId

@allowed(['Return401', 'RedirectToLoginPage'])
@description('What App Service Authentication answers a request without a sign-in, for the whole app: Return401 (default; right for the JSON API and scripts — operators open the dashboard through DASHBOARD_SIGNIN_URL) or RedirectToLoginPage (browsers go straight to the Entra sign-in; API clients without a token then get a 302 to an HTML page). docs/deploy.md §6.')
param signInUnauthenticatedAction string = 'Return401'

@description('Client ids, comma-separated, of further applications whose user tokens may call the API, e.g. the Azure CLI (04b07795-8ddb-461a-bbee-02f9e1bf7b46) for reads with `az account get-access-token`; the sign-in app itself always may.')
param signInAllowedClientApplications string = ''

@description('App role a reader needs (JIT_READ_ROLE); the sign-in app registration defines it.')
param readRole string = 'JitAccess.Read'

@description('Put storage, Service Bus and Event Hubs behind private endpoints in a virtual network the Function App is integrated with (VNET_ENABLED, as in Microsoft\'s Flex Consumption azd templates). Service Bus then needs Premium, which Standard cannot become in place: decide at the first deployment. Off: docs/deploy.md says what is exposed.')
param vnetEnabled bool = false

@description('vnetEnabled: the virtual network\'s name (empty = generated), address space and subnets (private endpoints; the app\'s VNet integration, delegated to Microsoft.App/environments).')
param vNetName string = ''
param vnetAddressPrefix string = '10.0.0.0/16'
param privateEndpointSubnetPrefix string = '10.0.1.0/24'
param appSubnetPrefix string = '10.0.2.0/24'

@description('vnetEnabled: public IPv4 addresses or CIDR ranges of the request senders outside the virtual network; empty = the Service Bus namespace takes no public traffic (senders inside or peered only).')
param serviceBusAllowedIpRanges array = []

// Telemetry (README "Telemetry", docs/deploy.md "Operations"): alert rules and the workbook.
@description('Create the alert rules (dead letters, failed grants, ends overdue, audit-hub lag).')
param alertsEnabled bool = true
@description('E-mail addresses notified by the alert rules, comma-separated (azd: JIT_ALERT_EMAILS); an action group is created when not empty.')
param alertEmails string = ''
@description('Existing action group (resource id) notified by the alert rules as well; empty = none.')
param alertActionGroupId string = ''
@description('Audit-hub lag (seconds) over which the audit-hub lag alert fires.')
param auditLagAlertSeconds int = 900
@description('Create the operations workbook.')
param workbookEnabled bool = true

// ---------------------------------------------------------------------------------------------
var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName, app: 'jitaccess' }
var rgName = !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
var appName = !empty(functionAppName) ? functionAppName : 'func-jit-${token}'
var hostAccount = !empty(hostStorageAccountName) ? hostStorageAccountName : take('stjithost${token}', 24)
var dataAccount = !empty(dataStorageAccountName) ? dataStorageAccountName : take('stjitdata${token}', 24)
var sbName = !empty(serviceBusNamespaceName) ? serviceBusNamespaceName : 'sb-jit-${token}'
var ehName = !empty(eventHubNamespaceName) ? eventHubNamespaceName : 'evhns-jit-${token}'
var uamiName = !empty(identityName) ? identityName : 'id-jit-${token}'
var useExistingEventHub = !empty(existingEventHubNamespace)
var deploymentContainer = 'app-package-${take(token, 10)}'
var auditHubName = useExistingEventHub ? existingEventHubName : 'insights-logs-auditlogs'
var auditHubResourceGroup = useExistingEventHub ? existingEventHubResourceGroup : rgName
var auditHubNamespace = useExistingEventHub ? existingEventHubNamespace : ehName
var serviceBusFqdn = '${sbName}.servicebus.windows.net'
var auditHubFqdn = '${auditHubNamespace}.servicebus.windows.net'
var signInAllowedApps = map(filter(split(signInAllowedClientApplications, ','), a => !empty(trim(a))), a => trim(a))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: { name: uamiName, location: location, tags: tags }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: { token: token, location: location, tags: tags }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    hostAccountName: hostAccount
    dataAccountName: dataAccount
    deploymentContainerName: deploymentContainer
    location: location
    tags: tags
    vnetEnabled: vnetEnabled
  }
}

module servicebus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: sbName
    location: location
    tags: tags
    queueName: requestsQueueName
    topicName: notificationsTopicName
    duplicateDetectionWindow: duplicateDetectionWindow
    vnetEnabled: vnetEnabled
    allowedIpRanges: serviceBusAllowedIpRanges
  }
}

module eventhubs 'modules/eventhubs.bicep' = if (!useExistingEventHub) {
  name: 'eventhubs'
  scope: rg
  params: { name: ehName, location: location, tags: tags, hubName: auditHubName, vnetEnabled: vnetEnabled }
}

// Role assignments on the resources of this group (tables, host storage, Service Bus, App Insights).
module access 'modules/access.bicep' = {
  name: 'access'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    dataAccountName: storage.outputs.dataAccountName
    hostAccountName: storage.outputs.hostAccountName
    serviceBusNamespaceName: servicebus.outputs.namespaceName
    queueName: servicebus.outputs.queueName
    topicName: servicebus.outputs.topicName
    appInsightsName: monitoring.outputs.appInsightsName
    requestSenderPrincipalIds: requestSenderPrincipalIds
  }
}

// Event Hubs Data Receiver on the audit hub, wherever it lives.
module auditHubAccess 'modules/eventhub-access.bicep' = {
  name: 'audit-hub-access'
  scope: resourceGroup(auditHubResourceGroup)
  params: {
    principalId: identity.outputs.principalId
    namespaceName: auditHubNamespace
    hubName: auditHubName
  }
  dependsOn: [eventhubs]
}

// ---------------------------------------------------------------------------------------------
// BEGIN app settings — every setting the Functions host and jitaccess read (docs/design.md, The contract (settings, functions)).
// infra/infra_test.go parses the NAME: value lines between these markers.
var appSettings = {
  // Host storage, identity based (no AccountKey).
  AzureWebJobsStorage__accountName: storage.outputs.hostAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  // Trigger connections, identity based.
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusFqdn
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identity.outputs.clientId
  AuditEventHubConnection__fullyQualifiedNamespace: auditHubFqdn
  AuditEventHubConnection__credential: 'managedidentity'
  AuditEventHubConnection__clientId: identity.outputs.clientId
  // Monitoring with Entra auth (local auth disabled on the component).
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identity.outputs.clientId}'
  // Binding settings: the host resolves %X% itself and fails indexing when one is missing.
  JIT_REQUESTS_QUEUE: requestsQueueName
  JIT_SWEEP_SCHEDULE: sweepSchedule
  JIT_AUDIT_HUB: auditHubName
  // jitaccess settings.
  AZURE_CLIENT_ID: identity.outputs.clientId
  JIT_TABLES_ENDPOINT: 'https://${storage.outputs.dataAccountName}.table.${environment().suffixes.storage}'
  JIT_TABLE_PREFIX: tablePrefix
  JIT_GRAPH_BASE_URL: graphBaseUrl
  JIT_GRAPH_SCOPE: graphScope
  JIT_PROFILES_FILE: profilesFile
  JIT_SERVICEBUS_NAMESPACE: serviceBusFqdn
  JIT_NOTIFICATIONS_TOPIC: notificationsTopicName
  JIT_LOG_LEVEL: logLevel
  JIT_RECONCILE_MAX_GRAPH_CALLS: reconcileMaxGraphCalls
  JIT_CONTINUATION_KEY: continuationKey
  JIT_EXPIRING_NOTICE_LEAD: expiringNoticeLead
  JIT_APPROVER_CACHE_TTL: approverCacheTtl
  JIT_REDELIVERY_PATIENCE: redeliveryPatience
  JIT_REPLICATION_WINDOW: replicationWindow
  JIT_ARM_BASE_URL: armBaseUrl
  JIT_ARM_SCOPE: armScope
  JIT_TOKEN_LIFETIME: tokenLifetime
  JIT_RBAC_PROPAGATION: rbacPropagation
  // Who may read (docs/design.md, The read API): the app role; App Service Authentication signs in with a federated
  // credential of the identity instead of a client secret, and accepts tokens of one tenant only.
  JIT_READ_ROLE: readRole
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identity.outputs.clientId
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: signInTenantId
}
// END app settings

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: appName
    location: location
    tags: union(tags, { 'azd-service-name': 'jitaccess' })
    identityId: identity.outputs.id
    hostAccountName: storage.outputs.hostAccountName
    deploymentContainerName: deploymentContainer
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    appSettings: appSettings
    signInClientId: signInClientId
    signInIssuer: '${environment().authentication.loginEndpoint}${signInTenantId}/v2.0'
    signInUnauthenticatedAction: signInUnauthenticatedAction
    signInAllowedClientApplications: signInAllowedApps
    virtualNetworkSubnetId: vnetEnabled ? network!.outputs.appSubnetId : ''
  }
  // The host starts as soon as the site exists: its identity must already hold its roles, and
  // with vnetEnabled the private endpoints must resolve.
  dependsOn: [access, auditHubAccess, hostBlobEndpoint, dataTableEndpoint, serviceBusEndpoint, auditHubEndpoint]
}

// Telemetry: alert rules and the workbook over the app's Application Insights (modules/alerts.bicep,
// modules/workbook.bicep).
var appInsightsId = resourceId(subscription().subscriptionId, rgName, 'Microsoft.Insights/components', monitoring.outputs.appInsightsName)

module alerts 'modules/alerts.bicep' = if (alertsEnabled) {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: appInsightsId
    serviceBusNamespaceId: resourceId(subscription().subscriptionId, rgName, 'Microsoft.ServiceBus/namespaces', servicebus.outputs.namespaceName)
    requestsQueueName: servicebus.outputs.queueName
    auditHubNamespaceId: resourceId(subscription().subscriptionId, auditHubResourceGroup, 'Microsoft.EventHub/namespaces', auditHubNamespace)
    auditHubName: auditHubName
    alertEmails: map(filter(split(alertEmails, ','), a => !empty(trim(a))), a => trim(a))
    actionGroupId: alertActionGroupId
    auditLagThresholdSeconds: auditLagAlertSeconds
  }
  dependsOn: [eventhubs]
}

module workbook 'modules/workbook.bicep' = if (workbookEnabled) {
  name: 'workbook'
  scope: rg
  params: { location: location, tags: tags, appInsightsId: appInsightsId }
}

// ---------------------------------------------------------------------------------------------
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output FUNCTION_APP_HOSTNAME string = app.outputs.defaultHostName
output API_HEALTH_URL string = 'https://${app.outputs.defaultHostName}/api/health'
output API_REQUESTS_URL string = 'https://${app.outputs.defaultHostName}/api/requests'
output API_DASHBOARD_URL string = 'https://${app.outputs.defaultHostName}/api/dashboard'
// Sign-in (docs/design.md, The read API): the dashboard through App Service Authentication's sign-in (no key or token
// in it), the redirect URI the app registration needs, and its client id (empty: none configured).
output DASHBOARD_SIGNIN_URL string = 'https://${app.outputs.defaultHostName}/.auth/login/aad?post_login_redirect_uri=/api/dashboard'
output SIGNIN_REDIRECT_URI string = 'https://${app.outputs.defaultHostName}/.auth/login/aad/callback'
output SIGNIN_CLIENT_ID string = signInClientId
// azure-role profiles: Role Based Access Control Administrator on each cluster, conditioned to the
// profiles' roles and to users (modules/rbac-scope.bicep).
module rbacScopes 'modules/rbac-scope.bicep' = [for (t, i) in azureRoleTargets: {
  name: 'jit-rbac-${i}'
  scope: resourceGroup(t.subscriptionId, t.resourceGroup)
  params: {
    clusterName: t.cluster
    roleDefinitionIds: t.roleDefinitionIds
    principalId: identity.outputs.principalId
  }
}]

output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SERVICEBUS_NAMESPACE string = serviceBusFqdn
output REQUESTS_QUEUE string = requestsQueueName
output NOTIFICATIONS_TOPIC string = notificationsTopicName
output AUDIT_EVENTHUB_NAMESPACE string = auditHubNamespace
output AUDIT_EVENTHUB_NAME string = auditHubName
// Resource id of the namespace rule the Entra diagnostic setting streams through (empty with an
// existing hub: pass your own to infra/scripts/create-audit-diagnostic-setting.sh).
output AUDIT_EVENTHUB_RULE_ID string = useExistingEventHub ? '' : eventhubs!.outputs.diagnosticsRuleId

// ---------------------------------------------------------------------------------------------
// vnetEnabled: the virtual network, and a private endpoint for each data-plane resource the app
// reaches (host storage blob, data storage table, Service Bus, the audit Event Hubs namespace
// created here). Public access to them is then disabled in their modules. Not covered: an existing
// audit hub (its owner's network rules apply), Application Insights ingestion (public, Entra-only)
// and the app's own HTTP endpoint (public: /api/health anonymous, the rest behind keys).
var vnetName = !empty(vNetName) ? vNetName : 'vnet-jit-${token}'

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: vnetName
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    appSubnetPrefix: appSubnetPrefix
  }
}

module hostBlobEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-host-blob'
  scope: rg
  params: {
    name: 'pe-${hostAccount}-blob'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    targetId: storage.outputs.hostAccountId
    groupId: 'blob'
    dnsZoneId: network!.outputs.blobZoneId
  }
}

module dataTableEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-data-table'
  scope: rg
  params: {
    name: 'pe-${dataAccount}-table'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    targetId: storage.outputs.dataAccountId
    groupId: 'table'
    dnsZoneId: network!.outputs.tableZoneId
  }
}

module serviceBusEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-servicebus'
  scope: rg
  params: {
    name: 'pe-${sbName}'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    targetId: servicebus.outputs.namespaceId
    groupId: 'namespace'
    dnsZoneId: network!.outputs.serviceBusZoneId
  }
}

module auditHubEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled && !useExistingEventHub) {
  name: 'pe-audit-hub'
  scope: rg
  params: {
    name: 'pe-${ehName}'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    targetId: eventhubs!.outputs.namespaceId
    groupId: 'namespace'
    dnsZoneId: network!.outputs.serviceBusZoneId
  }
}

output VNET_ENABLED bool = vnetEnabled
