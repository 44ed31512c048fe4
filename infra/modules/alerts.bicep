// Alert rules for an operator of jitaccess (README "Telemetry", docs/deploy.md "Operations").
//
//   dead letters     Service Bus metric DeadletteredMessages on the requests queue (metric alert)
//   failed grants    a grant whose Graph/ARM step failed for good: "grant ended" lines with state
//                    failed (log search alert)
//   ends overdue     the sweep's latest "metrics" line shows a grant past its end by more than one
//                    sweep interval, or Graph/ARM work stuck for 5 minutes — or no metrics line at
//                    all, i.e. the sweep is not running (log search alert)
//   audit-hub lag    the oldest event of an EntraAuditEvents batch waited too long in the hub (log
//                    search alert), and events arrive at the hub while nothing reads them (metric
//                    alert on the hub's namespace)
//
// The log search alerts read jitaccess's own JSON lines in Application Insights `traces`: the
// copy the host records from the handler's stdout (category Host.Function.Console), which holds
// every line once — the copy in an invocation's answer (category Function.<Name>.User) is linked
// to the invocation but exists only for a successful one. Field and message names are those of
// internal/telemetry; infra/infra_test.go checks every name a query reads against that package.
param location string
param tags object = {}
@description('Resource id of the workspace-based Application Insights component the function app logs to.')
param appInsightsId string
@description('Resource id of the Service Bus namespace of the requests queue.')
param serviceBusNamespaceId string
param requestsQueueName string
@description('Resource id of the Event Hubs namespace of the audit hub (it may live in another resource group).')
param auditHubNamespaceId string
param auditHubName string
@description('E-mail addresses that receive the alerts (an action group is created when not empty).')
param alertEmails array = []
@description('Existing action group to notify as well (resource id; empty = none).')
param actionGroupId string = ''
@description('Audit-hub lag that alerts: the oldest event of a batch waited longer than this in the hub (seconds).')
param auditLagThresholdSeconds int = 900
@description('Name prefix of the rules.')
param namePrefix string = 'jit'

var ownGroup = !empty(alertEmails)
var actionGroupIds = concat(ownGroup ? [actionGroup.id] : [], empty(actionGroupId) ? [] : [actionGroupId])
var metricActions = [for id in actionGroupIds: { actionGroupId: id }]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (ownGroup) {
  name: '${namePrefix}-ops'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'jitaccess'
    enabled: true
    emailReceivers: [for (e, i) in alertEmails: { name: 'email-${i}', emailAddress: e, useCommonAlertSchema: true }]
  }
}

// jitaccess's JSON lines, once each (the stdout copy), parsed into j.
var jitLines = '''traces
| where tostring(customDimensions.Category) == "Host.Function.Console" and message startswith "{"
| extend j = parse_json(message)'''

// ---------------------------------------------------------------------------------------------
// Dead letters on the requests queue: a request event failed every delivery (maxDeliveryCount)
// and nothing will process it. DeadletteredMessages is the count in the dead-letter queue.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Request events were dead-lettered on queue ${requestsQueueName}: they failed every delivery and will not be processed. Look at the dead-letter queue and at the failed AccessRequests invocations.'
    severity: 1
    enabled: true
    scopes: [serviceBusNamespaceId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: [requestsQueueName] }]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: metricActions
  }
}

// ---------------------------------------------------------------------------------------------
// Failed grants: a grant (or its end) whose Graph/ARM step failed permanently — e.g. a removal
// refused for lack of permission: the membership may still be there.
resource failedGrants 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-failed-grants'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${namePrefix}: failed grants'
    description: 'A grant failed: a Graph or ARM step (add, remove, revoke sessions, role assignment) failed for good. The request is in state failed with its reason (GET /api/requests/{id}, dashboard "needs attention").'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    // Stateful: fires once, resolves when no failure is left in the window.
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace('''JITLINES
| where tostring(j.msg) == "grant ended" and tostring(j.state) == "failed"
| summarize failed = dcount(tostring(j.requestId))''', 'JITLINES', jitLines)
          timeAggregation: 'Total'
          metricMeasureColumn: 'failed'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actionGroupIds }
  }
}

// ---------------------------------------------------------------------------------------------
// Ends overdue: the latest metrics line of the sweep shows a grant still active or ending more than
// one sweep interval after its end, or work stuck; no metrics line in the window means the sweep
// itself is not running (nothing would end).
resource endsOverdue 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-ends-overdue'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${namePrefix}: ends overdue'
    description: 'A grant is past its end by more than one sweep interval (or Graph/ARM work has been unfinished for 5 minutes, or the sweep logged no metrics line for 10 minutes): access that should be gone may still be there. See the dashboard ("needs attention") and the ExpirySweep invocations.'
    severity: 1
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace('''JITLINES
| where tostring(j.msg) == "metrics"
| extend endsOverdue = toint(j.endsOverdue), stuckWork = toint(j.stuckWork), oldestOverdueSeconds = toint(j.oldestOverdueSeconds)
| summarize lines = count(), arg_max(timestamp, endsOverdue, stuckWork, oldestOverdueSeconds)
| where lines == 0 or endsOverdue > 0 or stuckWork > 0''', 'JITLINES', jitLines)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actionGroupIds }
  }
}

// ---------------------------------------------------------------------------------------------
// Audit-hub lag: Entra audit events wait in the hub before jitaccess reads them (out-of-band
// additions and portal PIM activations are seen late).
resource auditLag 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-audit-hub-lag'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${namePrefix}: audit-hub lag'
    description: 'Entra audit events waited more than ${auditLagThresholdSeconds} s in hub ${auditHubName} before EntraAuditEvents read them: out-of-band members and portal PIM activations are seen late.'
    severity: 2
    enabled: true
    scopes: [appInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace(replace('''JITLINES
| where tostring(j.function) == "EntraAuditEvents" and tostring(j.msg) in ("invocation done", "invocation failed")
| summarize lag = max(toint(j.auditHubLagSeconds))
| where lag > THRESHOLD''', 'JITLINES', jitLines), 'THRESHOLD', string(auditLagThresholdSeconds))
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actionGroupIds }
  }
}

// Events reach the audit hub and nothing reads them for 30 minutes (the trigger is stopped, its
// identity lost Event Hubs Data Receiver, or the app is down): no invocation, so no lag line.
// OutgoingMessages counts every consumer group: another reader of a shared hub hides this case.
resource auditStalled 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-audit-hub-unread'
  location: 'global'
  tags: tags
  properties: {
    description: 'Events arrive at audit hub ${auditHubName} and none were read for 30 minutes: EntraAuditEvents is not running.'
    severity: 2
    enabled: true
    scopes: [auditHubNamespaceId]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'IncomingMessages'
          metricNamespace: 'Microsoft.EventHub/namespaces'
          metricName: 'IncomingMessages'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: [auditHubName] }]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'OutgoingMessages'
          metricNamespace: 'Microsoft.EventHub/namespaces'
          metricName: 'OutgoingMessages'
          dimensions: [{ name: 'EntityName', operator: 'Include', values: [auditHubName] }]
          operator: 'LessThan'
          threshold: 1
          timeAggregation: 'Total'
        }
      ]
    }
    actions: metricActions
  }
}

output actionGroupIds array = actionGroupIds
output ruleNames array = [deadLetters.name, failedGrants.name, endsOverdue.name, auditLag.name, auditStalled.name]
