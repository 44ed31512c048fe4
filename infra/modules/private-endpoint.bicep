// One private endpoint (vnetEnabled) in the private-endpoints subnet, with its DNS record in the
// service's private DNS zone (infra/modules/network.bicep), so that the resource's public name
// resolves to the endpoint's private address inside the virtual network.
param name string
param location string
param tags object = {}
param subnetId string
@description('Resource id of the storage account or namespace.')
param targetId string
@allowed(['blob', 'table', 'namespace'])
@description('Private-link sub-resource: blob or table (storage), namespace (Service Bus, Event Hubs).')
param groupId string
param dnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [groupId]
        }
      }
    ]
  }
}

resource dns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: { privateDnsZoneId: dnsZoneId }
      }
    ]
  }
}
