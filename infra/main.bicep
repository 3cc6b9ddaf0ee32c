// The whole deployment: one resource group holding the function app and everything it uses.
// `azd up` fills the parameters from infra/main.parameters.json; docs/deploy.md walks through them.
targetScope = 'subscription'

import { downstreamApi } from 'types.bicep'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('External ID tenant subdomain: the authority becomes https://<subdomain>.ciamlogin.com/.')
param tenantSubdomain string

@description('Optional authority URL overriding tenantSubdomain, e.g. https://login.contoso.com/<tenant ID>/ with an External ID custom URL domain (docs/deploy.md). Empty: https://<subdomain>.ciamlogin.com/.')
param authority string = ''

@description('Application (client) ID of the web app registration.')
param clientId string

@description('How the app proves itself to External ID: "secret" (clientSecret, kept in Key Vault) or "certificate" (a PEM certificate you create in the app\'s Key Vault: docs/deploy.md, "A certificate instead of the client secret").')
param clientCredential 'secret' | 'certificate' = 'secret'

@secure()
@description('With clientCredential "secret": a client secret of the web app registration, stored in Key Vault only. Unused with "certificate".')
param clientSecret string = ''

@minLength(1)
@maxLength(127)
@description('With clientCredential "certificate": the name of the certificate in the app\'s Key Vault. The app reads its latest version.')
param clientCertificateName string = 'client-certificate'

@description('Base URL of the ToDoList API collection, e.g. https://api.example/api/todolist.')
param todoListEndpoint string

@description('Full read scope of the ToDoList API, e.g. api://<api-client-id>/ToDoList.Read.')
param todoListReadScope string

@description('Full read-write scope of the ToDoList API, e.g. api://<api-client-id>/ToDoList.ReadWrite.')
param todoListReadWriteScope string

@description('APIs the app proxies besides todos, in order (docs/deploy.md, "Adding an API"); azd passes them as JSON in DOWNSTREAM_APIS_JSON. Not secret: no Key Vault.')
param downstreamApis downstreamApi[] = []

@secure()
@description('Comma-separated base64 32-byte keys (openssl rand -base64 32); the first seals sessions. Stored in Key Vault only.')
param sessionKeys string

@secure()
@description('Comma-separated base64 32-byte keys (openssl rand -base64 32); the first seals token caches. Stored in Key Vault only.')
param tokenCacheKeys string

@minValue(100)
@maxValue(120000)
@description('Timeout of one proxied ToDoList API call, in milliseconds.')
param todoListTimeoutMs int = 10000

@minLength(3)
@maxLength(63)
@description('Name of the token-cache table.')
param tokenCacheTable string = 'tokencache'

@minValue(1)
@maxValue(3650)
@description('Token-cache rows unused this many days are deleted (Entra refresh tokens live 90 days).')
param tokenCacheRetentionDays int = 90

@minValue(1)
@maxValue(43200)
@description('A session unused this many minutes ends.')
param sessionIdleMinutes int = 120

@minValue(1)
@maxValue(2160)
@description('A session ends this many hours after sign-in, whatever the activity.')
param sessionAbsoluteHours int = 24

@minValue(0)
@maxValue(300)
@description('An instance serves a session and its access token from memory this many seconds before it reads the table again; a sign-out on another instance takes effect here within this time. 0: read on every request.')
param sessionRecheckSeconds int = 5

@description('Key Vault purge protection. Recommended for production; while on, a deleted vault name stays reserved until its soft-delete retention ends.')
param keyVaultPurgeProtection bool = true

@minValue(40)
@maxValue(1000)
@description('Most instances the Flex Consumption plan scales out to.')
param maximumInstanceCount int = 100

@minValue(1)
@maxValue(1000)
@description('Traces (requests with their dependencies) kept per second and instance; the rest are sampled out.')
param telemetryTracesPerSecond int = 5

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'app-${resourceToken}'
  scope: resourceGroup
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    tenantSubdomain: tenantSubdomain
    authority: authority
    clientId: clientId
    clientCredential: clientCredential
    clientSecret: clientSecret
    clientCertificateName: clientCertificateName
    todoListEndpoint: todoListEndpoint
    todoListReadScope: todoListReadScope
    todoListReadWriteScope: todoListReadWriteScope
    todoListTimeoutMs: todoListTimeoutMs
    downstreamApis: downstreamApis
    sessionKeys: sessionKeys
    tokenCacheKeys: tokenCacheKeys
    tokenCacheTable: tokenCacheTable
    tokenCacheRetentionDays: tokenCacheRetentionDays
    sessionIdleMinutes: sessionIdleMinutes
    sessionAbsoluteHours: sessionAbsoluteHours
    sessionRecheckSeconds: sessionRecheckSeconds
    keyVaultPurgeProtection: keyVaultPurgeProtection
    maximumInstanceCount: maximumInstanceCount
    telemetryTracesPerSecond: telemetryTracesPerSecond
  }
}

// azd saves these in the environment (`azd env get-values`); the last two go into the web app
// registration.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_KEY_VAULT_NAME string = app.outputs.keyVaultName
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output APPLICATIONINSIGHTS_NAME string = app.outputs.applicationInsightsName
output APP_URL string = app.outputs.appUrl
output REDIRECT_URI string = app.outputs.redirectUri
output POST_LOGOUT_REDIRECT_URI string = app.outputs.postLogoutRedirectUri
