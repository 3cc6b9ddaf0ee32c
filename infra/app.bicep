// Everything the function app needs, in one resource group. The app reaches storage, Key Vault and
// Application Insights with its user-assigned identity only: no account key, connection string or
// instrumentation key grants access to anything here.

import { downstreamApi } from 'types.bicep'

param location string
param tags object
@description('Short unique suffix of every resource name.')
param resourceToken string

param tenantSubdomain string
@description('Empty: the app derives the authority from tenantSubdomain.')
param authority string
param clientId string
param clientCredential 'secret' | 'certificate'
@secure()
param clientSecret string
@description('The certificate in this vault whose secret is CLIENT_CERTIFICATE, with clientCredential "certificate".')
param clientCertificateName string
param todoListEndpoint string
param todoListReadScope string
param todoListReadWriteScope string
param todoListTimeoutMs int
@description('The APIs besides todos, in DOWNSTREAM_APIS order.')
param downstreamApis downstreamApi[]
@secure()
param sessionKeys string
@secure()
param tokenCacheKeys string
param tokenCacheTable string
param tokenCacheRetentionDays int
param sessionIdleMinutes int
param sessionAbsoluteHours int
param sessionRecheckSeconds int
param keyVaultPurgeProtection bool
param maximumInstanceCount int
param telemetryTracesPerSecond int

// Built-in role definitions (the same GUIDs in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}
var deploymentContainerName = 'app-package'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

// ---- Storage: the host's own storage, the deployment package and the token cache ----

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
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
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Created here so the app never needs to create it (it would if it were missing).
resource tokenTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: tokenCacheTable
}

// ---- Monitoring: ingestion only with Entra ID (the identity below), never the instrumentation key ----

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

// ---- Key Vault: the three secrets, read by the platform through Key Vault references ----

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // The API accepts true or nothing: purge protection cannot be switched off once on.
    enablePurgeProtection: keyVaultPurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

// Only with the secret: with the certificate no secret exists (an earlier deployment's stays in the
// vault, unused: docs/deploy.md says to delete it).
resource clientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (clientCredential == 'secret') {
  parent: vault
  name: 'client-secret'
  properties: {
    value: empty(clientSecret) ? fail('clientCredential is "secret" but clientSecret is empty: azd env set ENTRA_CLIENT_SECRET, or choose the certificate (azd env set ENTRA_CLIENT_CREDENTIAL certificate; docs/deploy.md)') : clientSecret
    contentType: 'text/plain'
  }
}

resource sessionKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'session-keys'
  properties: {
    value: sessionKeys
    contentType: 'text/plain'
  }
}

resource tokenCacheKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'token-cache-keys'
  properties: {
    value: tokenCacheKeys
    contentType: 'text/plain'
  }
}

// ---- Role assignments: what the app's identity may do, and nothing more ----
// No queue role: the app has HTTP and timer triggers only, and the host needs blobs (leases,
// keys, the deployment package) but no queue for those.

resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// On the account, not the table: creating a table (the app checks that it exists) is authorized
// against the table service.
resource storageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource monitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource keyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- The function app: Flex Consumption, Linux, Node.js 22 ----

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${resourceToken}'
  location: location
  // azd deploys the `app` service of azure.yaml to the resource carrying this tag.
  tags: union(tags, { 'azd-service-name': 'app' })
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
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
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
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
  dependsOn: [
    deploymentContainer
  ]
}

// Deployments use Entra ID tokens (azd, the Azure CLI); basic-auth publishing stays off.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

var appUrl = 'https://${functionApp.properties.defaultHostName}'

// ---- The client credential: CLIENT_SECRET or CLIENT_CERTIFICATE, never both (the app refuses both) ----

// Key Vault keeps a certificate's private key and certificate in the secret of the same name
// (https://learn.microsoft.com/azure/key-vault/certificates/about-certificates, "Composition of a
// certificate"), which the identity's Key Vault Secrets User role lets it read ("including secret
// portion of a certificate with private key":
// https://learn.microsoft.com/azure/key-vault/general/rbac-guide). The reference names no version:
// App Service resolves the latest one and re-fetches it every 24 hours or at a configuration change
// (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references, "Understand
// rotation"), so a renewed certificate reaches the app without a deployment.
var clientCredentialSettings = clientCredential == 'certificate' ? {
  CLIENT_CERTIFICATE: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${clientCertificateName}/)'
} : {
  CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${clientSecretSecret.properties.secretUriWithVersion})'
}

// ---- The APIs: DOWNSTREAM_APIS and each one's DOWNSTREAM_API_<NAME>_* (src/lib/config.ts) ----

var downstreamApiNames = map(downstreamApis, api => api.name)
// Bicep has no regular expressions: split at every allowed character, a name leaves nothing else.
var apiNameAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-'
var apiNameCharacters = map(range(0, length(apiNameAlphabet)), i => substring(apiNameAlphabet, i, 1))
// What the app would refuse at start-up, refused before anything is deployed, in one message.
var apiNameProblems = map(filter(downstreamApis, api => length(api.name) < 1 || length(api.name) > 32 || !contains('abcdefghijklmnopqrstuvwxyz', take(api.name, 1)) || !empty(join(split(api.name, apiNameCharacters), ''))), api => 'name "${api.name}" must be 1 to 32 lower-case letters, digits or "-", starting with a letter')
var reservedNameProblems = contains(downstreamApiNames, 'todos') ? ['name "todos" is the ToDoList API of the todoList* parameters: give this API another name'] : []
var repeatedNameProblems = map(filter(range(0, length(downstreamApiNames)), i => indexOf(downstreamApiNames, downstreamApiNames[i]) != i), i => 'name "${downstreamApiNames[i]}" is given twice')
var apiUrlProblems = map(filter(downstreamApis, api => !startsWith(api.url, 'https://') || contains(api.url, '?') || contains(api.url, '#')), api => '${api.name}: url must be https without a query or fragment, got "${api.url}"')
// Scopes become one space-separated setting: a scope holding a space would turn into two.
var apiScopeProblems = map(filter(downstreamApis, api => contains('|${join(concat(api.readScopes, api.writeScopes), '|')}|', '||') || contains(join(concat(api.readScopes, api.writeScopes), '|'), ' ') || contains(join(concat(api.readScopes, api.writeScopes), '|'), '"')), api => '${api.name}: each scope must be one full scope, without spaces or quotes')
var downstreamApiProblems = concat(apiNameProblems, reservedNameProblems, repeatedNameProblems, apiUrlProblems, apiScopeProblems)
// todos first: the TODOLIST_* settings define it. Then each API's four settings.
var downstreamApiSettings = reduce(downstreamApis, {
  DOWNSTREAM_APIS: empty(downstreamApiProblems) ? join(concat(['todos'], downstreamApiNames), ',') : fail('downstreamApis (DOWNSTREAM_APIS_JSON): ${join(downstreamApiProblems, '; ')}')
}, (settings, api) => union(settings, {
  'DOWNSTREAM_API_${toUpper(replace(api.name, '-', '_'))}_URL': api.url
  'DOWNSTREAM_API_${toUpper(replace(api.name, '-', '_'))}_READ_SCOPES': join(api.readScopes, ' ')
  'DOWNSTREAM_API_${toUpper(replace(api.name, '-', '_'))}_WRITE_SCOPES': join(api.writeScopes, ' ')
  'DOWNSTREAM_API_${toUpper(replace(api.name, '-', '_'))}_TIMEOUT_MS': string(api.?timeoutMs ?? 10000)
}))

// The settings of src/lib/config.ts (README, "Settings"). Left out on purpose: TOKEN_CACHE_STORAGE
// (a connection string: this storage account accepts no shared key). AUTHORITY is empty unless a
// custom URL domain is used: the app reads an empty setting as unset. This resource replaces the
// whole list, so a setting set by hand is gone after the next provision: every setting is here.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union({
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identity.properties.clientId}'
    // The worker's spans carry the same cloud role name as the host's.
    OTEL_SERVICE_NAME: functionApp.name
    // In OpenTelemetry mode the host samples by these (host.json's sampling settings do not apply);
    // the app's own spans follow the host's decision for each request.
    OTEL_TRACES_SAMPLER: 'microsoft.rate_limited'
    OTEL_TRACES_SAMPLER_ARG: string(telemetryTracesPerSecond)
    TENANT_SUBDOMAIN: tenantSubdomain
    AUTHORITY: authority
    CLIENT_ID: clientId
    REDIRECT_URI: '${appUrl}/auth/redirect'
    POST_LOGOUT_REDIRECT_URI: '${appUrl}/'
    TODOLIST_ENDPOINT: todoListEndpoint
    TODOLIST_READ: todoListReadScope
    TODOLIST_READWRITE: todoListReadWriteScope
    TODOLIST_TIMEOUT_MS: string(todoListTimeoutMs)
    TOKEN_CACHE_STORAGE__tableServiceUri: storage.properties.primaryEndpoints.table
    TOKEN_CACHE_STORAGE__credential: 'managedidentity'
    TOKEN_CACHE_STORAGE__clientId: identity.properties.clientId
    TOKEN_CACHE_TABLE: tokenTable.name
    TOKEN_CACHE_KEYS: '@Microsoft.KeyVault(SecretUri=${tokenCacheKeysSecret.properties.secretUriWithVersion})'
    TOKEN_CACHE_RETENTION_DAYS: string(tokenCacheRetentionDays)
    SESSION_KEYS: '@Microsoft.KeyVault(SecretUri=${sessionKeysSecret.properties.secretUriWithVersion})'
    SESSION_IDLE_MINUTES: string(sessionIdleMinutes)
    SESSION_ABSOLUTE_HOURS: string(sessionAbsoluteHours)
    SESSION_RECHECK_SECONDS: string(sessionRecheckSeconds)
    // The host answers a request for `/` that no function takes (a method the page's registration
    // cannot list, a CORS preflight) with its own home page; with this, 204 and no body
    // (HomepageMiddleware in azure-functions-host).
    AzureWebJobsDisableHomepage: 'true'
  }, clientCredentialSettings, downstreamApiSettings)
  // The host resolves Key Vault references and reaches storage as soon as settings change: grant
  // first.
  dependsOn: [
    storageBlobDataOwner
    storageTableDataContributor
    monitoringMetricsPublisher
    keyVaultSecretsUser
  ]
}

output functionAppName string = functionApp.name
output keyVaultName string = vault.name
output storageAccountName string = storage.name
output applicationInsightsName string = appInsights.name
output appUrl string = appUrl
output redirectUri string = '${appUrl}/auth/redirect'
output postLogoutRedirectUri string = '${appUrl}/'
