// The storage account of the app and of its task hub (AzureWebJobsStorage), reached only with
// Microsoft Entra tokens: shared keys (account keys, SAS signed with them) are refused.
param name string
param location string
param tags object = {}

@description('Blob container that Flex Consumption deploys the app package to (and Elastic Premium runs it from).')
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_35:The Functions host reaches the account over its public endpoint (this template has no virtual network); every request needs an Entra token, shared keys are off.
  //checkov:skip=CKV_AZURE_59:Public network access as above, with Entra-only authorisation. For a closed deployment add a virtual network and private endpoints.
  //checkov:skip=CKV_AZURE_206:Locally redundant, as in the Functions quickstarts; choose ZRS or GRS where the region and budget allow.
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = storage.name
output deploymentContainerName string = deploymentContainer.name
