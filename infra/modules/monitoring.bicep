// Log Analytics workspace and workspace-based Application Insights with local (key) auth
// disabled: telemetry is accepted only with an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// + Monitoring Metrics Publisher for the app's identity).
param token string
param location string
param tags object = {}
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-jit-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-jit-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output appInsightsName string = appInsights.name
// The connection string carries the instrumentation key, an identifier; with local auth disabled
// it cannot ingest anything without an Entra token.
output appInsightsConnectionString string = appInsights.properties.ConnectionString
