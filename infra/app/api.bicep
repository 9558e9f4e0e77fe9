// The function app and its plan: Flex Consumption (FC1) by default, Elastic Premium (EP1) with
// hostingPlan = 'ElasticPremium'. Python 3.11 on Linux, running as the user-assigned identity,
// every connection identity-based.
param name string
param planName string
param location string
param tags object = {}

@allowed([
  'FlexConsumption'
  'ElasticPremium'
])
param hostingPlan string = 'FlexConsumption'

param identityName string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param keyVaultName string
param managementKeySecretName string
param heartbeatSchedule string = '*/30 * * * * *'

// Flex Consumption (see main.bicep for why the wake-up function's group is the one kept ready).
param wakeupAlwaysReadyInstances int = 1
param httpAlwaysReadyInstances int = 0
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048

// Elastic Premium.
param premiumMinimumInstances int = 1
param premiumMaximumInstances int = 20

var isFlex = hostingPlan == 'FlexConsumption'
var pythonVersion = '3.11'
// Elastic Premium runs the zip that docs/azure.md has you upload here (see premiumSettings).
var premiumPackageBlobName = 'durable-ext-sample.zip'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource managementKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: managementKeySecretName
}

var wakeupAlwaysReady = (wakeupAlwaysReadyInstances > 0) ? [
  {
    name: 'function:durabletask_wakeup'
    instanceCount: wakeupAlwaysReadyInstances
  }
] : []
var httpAlwaysReady = (httpAlwaysReadyInstances > 0) ? [
  {
    name: 'http'
    instanceCount: httpAlwaysReadyInstances
  }
] : []
var alwaysReady = concat(wakeupAlwaysReady, httpAlwaysReady)

// Settings of every plan. The storage connection is identity-based: the account (and its
// service URIs, right in every cloud), the user-assigned identity's client id, no key.
var commonSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  // The connection string names the resource; with local auth off, ingestion needs the token
  // that the authentication string makes the host and the SDK fetch as the identity.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
  // The management key: a Key Vault reference, resolved as keyVaultReferenceIdentity.
  {
    name: 'DURABLE_EXT_SYSTEM_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${managementKeySecret.properties.secretUri})'
  }
  {
    name: 'DURABLE_EXT_HEARTBEAT_SCHEDULE'
    value: heartbeatSchedule
  }
]

// Elastic Premium needs the runtime settings that Flex Consumption takes from functionAppConfig.
// It runs without an Azure Files content share: the share's setting
// (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) would be an account-key connection string, which
// this account refuses. A Linux app may run without it when it runs from a package URL: the zip
// in the deployment container, read as the user-assigned identity.
var premiumSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'python'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE'
    value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}/${premiumPackageBlobName}'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID'
    value: identity.id
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  //checkov:skip=CKV_AZURE_225:Zone redundancy is offered in some regions only and needs several always-ready or minimum instances; the sample keeps one. Set zoneRedundant where the region has it.
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: 'EP1'
    tier: 'ElasticPremium'
    capacity: premiumMinimumInstances
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : premiumMaximumInstances
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  //checkov:skip=CKV_AZURE_222:The app's HTTP functions (starters, management API, health) are its interface; the management API checks its key, health a function key. Close it with private endpoints where clients are inside a virtual network.
  //checkov:skip=CKV_AZURE_17:Callers present function keys or the management key; client certificates would lock out ordinary HTTP clients and tools.
  //checkov:skip=CKV_AZURE_212:Instance counts are the plan's: always-ready instances (Flex Consumption) or minimum instances (Elastic Premium), parameters of main.bicep; scale-out adds more on demand.
  //checkov:skip=CKV_AZURE_213:The platform's health-check probe sends no key, and durabletask_health is a FUNCTION-level function (the probe would get 401); the health function is for monitors that hold a key.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: isFlex ? {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReady
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    } : null
    siteConfig: {
      linuxFxVersion: isFlex ? null : 'Python|${pythonVersion}'
      minimumElasticInstanceCount: isFlex ? null : premiumMinimumInstances
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: isFlex ? commonSettings : concat(commonSettings, premiumSettings)
    }
  }
}

output name string = functionApp.name
