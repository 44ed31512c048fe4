// The audit namespace: an Event Hubs Standard namespace of its own, holding only the hub the Entra
// diagnostic setting streams AuditLogs into (Entra names it insights-logs-auditlogs by default).
//
// Its only key is the one Entra needs. Azure Monitor / Entra diagnostic settings stream through a
// namespace authorization rule with Manage, Send and Listen ("Streaming to Event Hubs requires
// Manage, Send, and Listen permissions", learn.microsoft.com/azure/azure-monitor/essentials/
// diagnostic-settings), so local (key) auth must stay enabled here — which is why nothing else
// lives in this namespace. Every namespace is created with one such rule,
// RootManageSharedAccessKey (Manage, Send, Listen); the diagnostic setting uses it and this
// template declares no other rule. Its keys are never read by this template or by jitaccess (no
// listKeys): the app receives with its managed identity (Azure Event Hubs Data Receiver on the hub,
// modules/eventhub-access.bicep), and only the administrator creating the diagnostic setting needs
// the right to list the rule's keys (infra/scripts/create-audit-diagnostic-setting.sh).
//
// vnetEnabled: the app reads through a private endpoint; public traffic is refused, and Entra's
// stream comes in as a trusted Microsoft service ("Azure Monitor (Diagnostic Settings)" is on
// Event Hubs' trusted-services list; diagnostic settings need "Allow trusted Microsoft services").
param name string
param location string
param tags object = {}
param hubName string = 'insights-logs-auditlogs'
param retentionDays int = 7
param vnetEnabled bool = false

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard', capacity: 1 }
  properties: {
    minimumTlsVersion: '1.2'
    // Required by Entra's diagnostic setting (above); the app itself uses Entra auth only.
    disableLocalAuth: false
    isAutoInflateEnabled: false
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
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

resource networkRules 'Microsoft.EventHub/namespaces/networkRuleSets@2024-01-01' = if (vnetEnabled) {
  parent: namespace
  name: 'default'
  properties: {
    publicNetworkAccess: 'Disabled'
    defaultAction: 'Deny'
    trustedServiceAccessEnabled: true
    virtualNetworkRules: []
    ipRules: []
  }
}

// The rule every namespace is created with; the only key of this namespace.
resource diagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' existing = {
  parent: namespace
  name: 'RootManageSharedAccessKey'
}

output namespaceName string = namespace.name
output namespaceId string = namespace.id
output hubName string = hub.name
output diagnosticsRuleId string = diagnosticsRule.id
