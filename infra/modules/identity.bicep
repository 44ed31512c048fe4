// The one user-assigned managed identity jitaccess uses for everything: host storage, deployment
// package, tables, Service Bus, Event Hubs, Application Insights and Microsoft Graph (app roles
// granted by infra/scripts/grant-graph-permissions.sh).
param name string
param location string
param tags object = {}

resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = uami.id
output name string = uami.name
output principalId string = uami.properties.principalId
output clientId string = uami.properties.clientId
