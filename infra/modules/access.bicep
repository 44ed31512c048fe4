// Role assignments for the app's managed identity, each scoped to the single resource it needs
// (never the resource group or subscription). Built-in role definition ids:
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
param principalId string
param dataAccountName string
param hostAccountName string
param serviceBusNamespaceName string
param queueName string
param topicName string
param appInsightsName string
@description('Extra principals allowed to send request events (Data Sender on the queue only).')
param requestSenderPrincipalIds array = []

var roles = {
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource dataAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataAccountName
}

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: serviceBusNamespaceName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = {
  parent: namespace
  name: queueName
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' existing = {
  parent: namespace
  name: topicName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Tables: requests, history, indexes (JIT_TABLES_ENDPOINT); includes creating the tables.
resource tablesContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataAccount.id, principalId, roles.storageTableDataContributor)
  scope: dataAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Host storage (AzureWebJobsStorage), blobs only: the Functions host creates its containers and
// keeps its key store, the timer trigger's locks and the Event Hubs checkpoints there — for which
// Microsoft documents Storage Blob Data Owner as the minimum ("the runtime needs both read and
// write access to blobs and the ability to create containers": functions-reference, "Connecting
// to host storage with an identity"). The Flex Consumption deployment container in the same
// account needs only Storage Blob Data Contributor (flex-consumption-how-to, "Configure
// deployment settings"), which Owner covers. Nothing else on this account: no queue or table
// role (no blob trigger, no Durable Functions; the optional diagnostic-events table is left out),
// and no role on the data account's blobs.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostAccount.id, principalId, roles.storageBlobDataOwner)
  scope: hostAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// AccessRequests trigger receives from the queue.
resource queueReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, roles.serviceBusDataReceiver)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// jitaccess schedules its own jit.access.expire messages on the queue.
resource queueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, roles.serviceBusDataSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Outcome events (JIT_NOTIFICATIONS_TOPIC).
resource topicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, roles.serviceBusDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with Entra auth (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The systems that send request events: the approval or ticketing integration's service
// principal, never a person — a sender can assert any approver's decision (SECURITY.md, "The
// honest limit"). principalType ServicePrincipal: Azure refuses the assignment for a user.
resource requestSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for sender in requestSenderPrincipalIds: {
    name: guid(queue.id, sender, roles.serviceBusDataSender)
    scope: queue
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
      principalId: sender
      principalType: 'ServicePrincipal'
    }
  }
]
