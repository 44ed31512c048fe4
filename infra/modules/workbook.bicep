// The operators' workbook: grants, ends and their revocation lag, failed grants, Graph/ARM
// failures and throttling, queue and audit-hub lag, warnings, and every line of one invocation or
// request — all from jitaccess's JSON lines in Application Insights (workbook.json; README
// "Telemetry"). Open it in the portal: Application Insights → Workbooks, or the resource group.
param location string
param tags object = {}
@description('Resource id of the Application Insights component the queries run against.')
param appInsightsId string
param displayName string = 'jitaccess operations'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID.
  name: guid(resourceGroup().id, appInsightsId, 'jitaccess-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    version: 'Notebook/1.0'
    serializedData: string(union(loadJsonContent('workbook.json'), { fallbackResourceIds: [appInsightsId] }))
  }
}

output workbookId string = workbook.id
