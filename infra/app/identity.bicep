// The app's user-assigned managed identity: the function app runs as it, and rbac.bicep gives it
// the data roles it needs. A user-assigned identity exists before the app, so its roles can be
// in place before the host first starts.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output principalId string = identity.properties.principalId
