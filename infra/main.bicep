// The sample app (function_app/) on Azure Functions, with identity-based storage and no keys:
// a user-assigned managed identity reaches storage, Application Insights and Key Vault through
// role assignments; the storage account refuses shared keys. `azd up` deploys it (azure.yaml);
// docs/azure.md walks through it. Validated offline by `make infra-check` and tests/infra/.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; the resource group and a hash in every resource name come from it.')
param environmentName string

@minLength(1)
@description('Region of every resource (Flex Consumption runs in a subset of regions: az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('FlexConsumption (FC1, the default) or ElasticPremium (EP1).')
@allowed([
  'FlexConsumption'
  'ElasticPremium'
])
param hostingPlan string = 'FlexConsumption'

// Always-ready instances (Flex Consumption). With durable_ext the host sees no durable trigger
// (orchestrators and activities run on the engine inside the Python worker, not as host
// functions), so the `durable` scaling group of Durable Functions does not exist here. The
// engine's work is made visible to the platform by the queue trigger durabletask_wakeup: clients
// put a message after sending work, the invocation holds while the engine works, and the engine
// tops the queue up when it wants more instances. That function scales as its own group,
// `function:durabletask_wakeup`; one always-ready instance there is an engine that is always
// warm: it picks up new work and due timers at once, with no cold start and without waiting for
// the heartbeat. The `http` group (starters, management API, health) only serves requests;
// give it instances too when HTTP latency matters.
@description('Always-ready instances for function:durabletask_wakeup, the group whose instances run the durable engine for the platform (Flex Consumption).')
@minValue(0)
param wakeupAlwaysReadyInstances int = 1

@description('Always-ready instances for the http group (Flex Consumption); 0 lets HTTP scale from zero.')
@minValue(0)
param httpAlwaysReadyInstances int = 0

@description('Most instances the app scales out to (Flex Consumption).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance in MB (Flex Consumption).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Minimum (always-ready) instances of the Elastic Premium plan; they stay warm and run the engine.')
@minValue(1)
@maxValue(20)
param premiumMinimumInstances int = 1

@description('Most instances of the Elastic Premium plan.')
@minValue(1)
@maxValue(100)
param premiumMaximumInstances int = 20

@description('Schedule of the durabletask_heartbeat timer (six-field NCRONTAB): how late a durable timer may fire after the app scaled to zero.')
param heartbeatSchedule string = '*/30 * * * * *'

@description('The management key (DURABLE_EXT_SYSTEM_KEY): azd generates it once and keeps it in the environment; it is stored only in Key Vault.')
@secure()
@minLength(32)
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 48
      noSpecial: true
    }
  }
})
param managementKey string

@description('Object id of the deploying user or service principal (azd sets AZURE_PRINCIPAL_ID): gets the storage data roles and Key Vault Secrets User, to run durable-ext commands and read the management key. Empty: none.')
param principalId string = ''

@description('Kind of principalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var managementKeySecretName = 'durable-ext-system-key'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package'
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    secretName: managementKeySecretName
    secretValue: managementKey
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    hostingPlan: hostingPlan
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    managementKeySecretName: managementKeySecretName
    heartbeatSchedule: heartbeatSchedule
    wakeupAlwaysReadyInstances: wakeupAlwaysReadyInstances
    httpAlwaysReadyInstances: httpAlwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    premiumMinimumInstances: premiumMinimumInstances
    premiumMaximumInstances: premiumMaximumInstances
  }
  // The identity must hold its roles before the host first reaches storage and Key Vault.
  dependsOn: [
    rbac
  ]
}

// azd stores these in the environment (.azure/<env>/.env). Names only: no keys, no secrets.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output DURABLE_EXT_SYSTEM_KEY_SECRET_NAME string = managementKeySecretName
output DURABLE_EXT_HOSTING_PLAN string = hostingPlan
