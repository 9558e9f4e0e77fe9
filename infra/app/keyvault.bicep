// Key Vault in RBAC mode holding the management key (DURABLE_EXT_SYSTEM_KEY). The app reads it
// through a Key Vault reference as its user-assigned identity (Key Vault Secrets User).
param name string
param location string
param tags object = {}
param secretName string

@secure()
param secretValue string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109:The app resolves the Key Vault reference over the public endpoint (no virtual network here), and App Service is not a trusted service that bypasses the firewall; access needs RBAC roles.
  //checkov:skip=CKV_AZURE_110:Purge protection is off so that `azd down --purge` removes a sample environment; turn it on for production.
  //checkov:skip=CKV_AZURE_42:Soft delete is on (7 days); recoverability beyond that is purge protection, off for the reason above.
  //checkov:skip=CKV_AZURE_189:The vault is reached over its public endpoint, as above; every read needs an RBAC role.
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  //checkov:skip=CKV_AZURE_41:An expiry would make the Key Vault reference fail and lock the management API on that date; rotate by setting a new version.
  properties: {
    value: secretValue
    contentType: 'text/plain'
  }
}

output name string = vault.name
