// Service Bus Standard (scheduled messages and topics need Standard): the requests queue and the
// notifications topic. Local (SAS key) auth is disabled: senders and the app use Entra identities.
param name string
param location string
param tags object = {}
param queueName string
param topicName string
param duplicateDetectionWindow string = 'PT1H'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
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
output queueName string = queue.name
output topicName string = topic.name
