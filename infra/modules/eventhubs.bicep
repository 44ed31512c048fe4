// Event Hubs Standard namespace and the audit hub the Entra diagnostic setting streams AuditLogs
// into (Entra names it insights-logs-auditlogs by default).
//
// Azure Monitor / Entra diagnostic settings stream through a namespace authorization rule that
// must have Manage, Send and Listen: that is the one place a shared access rule is needed, so local
// auth stays enabled on this namespace. The rule's keys are never read by this template or by
// jitaccess (no listKeys); the app receives with its managed identity (Event Hubs Data Receiver).
param name string
param location string
param tags object = {}
param hubName string = 'insights-logs-auditlogs'
param retentionDays int = 7

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard', capacity: 1 }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: false
    isAutoInflateEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: hubName
  properties: {
    partitionCount: 2
    messageRetentionInDays: retentionDays
  }
}

resource diagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = {
  parent: namespace
  name: 'entra-diagnostics'
  properties: {
    rights: ['Listen', 'Send', 'Manage']
  }
}

output namespaceName string = namespace.name
output hubName string = hub.name
output diagnosticsRuleId string = diagnosticsRule.id
