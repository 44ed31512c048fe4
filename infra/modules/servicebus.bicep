// Service Bus Standard (scheduled messages and topics need Standard): the requests queue and the
// notifications topic. Local (SAS key) auth is disabled: senders and the app use Entra identities.
//
// vnetEnabled: Premium (private endpoints need it), reached by the app through a private endpoint;
// public traffic is refused, except from allowedIpRanges (the request senders outside the virtual
// network). Standard cannot become Premium in place: choose at the first deployment.
param name string
param location string
param tags object = {}
param queueName string
param topicName string
param duplicateDetectionWindow string = 'PT1H'
param vnetEnabled bool = false
@description('With vnetEnabled: public IPv4 addresses or CIDR ranges allowed to reach the namespace (request senders outside the network); empty = no public traffic.')
param allowedIpRanges array = []

var publicAccess = !vnetEnabled || !empty(allowedIpRanges) ? 'Enabled' : 'Disabled'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: vnetEnabled ? { name: 'Premium', tier: 'Premium', capacity: 1 } : { name: 'Standard', tier: 'Standard' }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true
    publicNetworkAccess: publicAccess
  }
}

// vnetEnabled: deny by default; the listed sender addresses only. No trusted-service bypass: no
// Azure service needs to reach this namespace.
resource networkRules 'Microsoft.ServiceBus/namespaces/networkRuleSets@2022-10-01-preview' = if (vnetEnabled) {
  parent: namespace
  name: 'default'
  properties: {
    publicNetworkAccess: publicAccess
    defaultAction: 'Deny'
    trustedServiceAccessEnabled: false
    virtualNetworkRules: []
    ipRules: [for ip in allowedIpRanges: { ipMask: ip, action: 'Allow' }]
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: {
    // The host redelivers a failed invocation (non-2xx) until this count, then dead-letters.
    maxDeliveryCount: 10
    lockDuration: 'PT1M'
    // Scheduled jit.access.expire messages wait up to maxDuration (+ approval timeout) before they
    // are enqueued; a week of TTL after that is plenty, and expired messages are kept.
    defaultMessageTimeToLive: 'P7D'
    deadLetteringOnMessageExpiration: true
    // The CloudEvent id is the MessageId (jitaccess send sets it): a resend inside the window is
    // dropped by the broker; jitaccess is idempotent on the id anyway.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    requiresSession: false
    enablePartitioning: false
  }
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = {
  parent: namespace
  name: topicName
  properties: {
    defaultMessageTimeToLive: 'P7D'
    requiresDuplicateDetection: false
    enablePartitioning: false
  }
}

output namespaceName string = namespace.name
output namespaceId string = namespace.id
output queueName string = queue.name
output topicName string = topic.name
