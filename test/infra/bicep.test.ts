import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, globSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { generate } from 'selfsigned';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  ConfigError,
  loadConfig,
  SETTING_NAMES,
  type Environment,
  type SettingName,
} from '../../src/lib/config.ts';
import { BicepEvaluator, BicepFailure, type Value } from './bicep-evaluate.ts';
import {
  BicepTemplate,
  call,
  literal,
  objectProperties,
  propertyAt,
  referencePath,
  stringParts,
  syntaxProblems,
  type Node,
  type Resource,
} from './bicep-tree.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const infra = path.join(root, 'infra');
const main = new BicepTemplate(path.join(infra, 'main.bicep'));
const appModule = main.modules.get('app');
const app = new BicepTemplate(path.join(infra, appModule?.path ?? 'app.bicep'));
const types = new BicepTemplate(path.join(infra, 'types.bicep'));

/**
 * Settings of src/lib/config.ts that Azure must not get, and why. Every other name is set on the
 * function app, so adding a setting to the app without adding it to the template fails here.
 */
const INTENTIONALLY_ABSENT: Partial<Record<SettingName, string>> = {
  TOKEN_CACHE_STORAGE:
    'a connection string: the storage account accepts no shared key, so the app uses TOKEN_CACHE_STORAGE__tableServiceUri with its managed identity',
};

/** The `clientCredential` choice: the one setting each writes, and the one it must leave out. */
const CREDENTIAL_SETTINGS = {
  secret: { set: 'CLIENT_SECRET', absent: 'CLIENT_CERTIFICATE' },
  certificate: { set: 'CLIENT_CERTIFICATE', absent: 'CLIENT_SECRET' },
} as const satisfies Record<string, { set: SettingName; absent: SettingName }>;

/** Settings holding a secret: each a Key Vault reference to the secret of this secure parameter. */
const SECRET_SETTINGS: Partial<Record<SettingName, string>> = {
  CLIENT_SECRET: 'clientSecret',
  SESSION_KEYS: 'sessionKeys',
  TOKEN_CACHE_KEYS: 'tokenCacheKeys',
};

const ROLE = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
};

/**
 * The one resource of a type, or undefined; the test 'declares each resource once' says which is
 * missing or doubled, while a template that does not parse fails its own syntax test first.
 */
function single(resources: Resource[]): Resource | undefined {
  return resources.length === 1 ? resources[0] : undefined;
}

const functionApp = single(app.resourcesOfType('Microsoft.Web/sites'));
const identity = single(app.resourcesOfType('Microsoft.ManagedIdentity/userAssignedIdentities'));
const storage = single(app.resourcesOfType('Microsoft.Storage/storageAccounts'));
const insights = single(app.resourcesOfType('Microsoft.Insights/components'));
const vault = single(app.resourcesOfType('Microsoft.KeyVault/vaults'));
const appSettingsResource = single(
  app
    .resourcesOfType('Microsoft.Web/sites/config')
    .filter((resource) => literal(propertyAt(resource.body, 'name')) === 'appsettings'),
);
const identitySymbol = identity?.symbol ?? '(no identity)';
const storageSymbol = storage?.symbol ?? '(no storage account)';
// `union({ …the fixed settings… }, clientCredentialSettings, downstreamApiSettings)`
const appSettingsValue = propertyAt(appSettingsResource?.body, 'properties');
const appSettings = objectProperties(call(appSettingsValue)?.args[0]);
// `clientCredential == 'certificate' ? { CLIENT_CERTIFICATE: … } : { CLIENT_SECRET: … }`
const credentialChoice = app.variables.get('clientCredentialSettings');
const credentialSettings = {
  certificate: objectProperties(credentialChoice?.childForFieldName('consequence') ?? undefined),
  secret: objectProperties(credentialChoice?.childForFieldName('alternative') ?? undefined),
};
const site = (...keys: string[]) => propertyAt(functionApp?.body, 'properties', ...keys);

/** Whether `node` is the reference `symbol.member.member…`. */
function isReference(node: Node | undefined, ...expected: string[]): boolean {
  return referencePath(node)?.join('.') === expected.join('.');
}

/** The parent a child resource declares with `parent:`. */
function parentOf(resource: Resource): Resource | undefined {
  return app.resourceReferenced(propertyAt(resource.body, 'parent'));
}

describe('every .bicep file', () => {
  const files = globSync('**/*.bicep', { cwd: infra });

  it('is found', () => {
    expect(files).toEqual(expect.arrayContaining(['main.bicep', 'app.bicep']));
  });

  it.each(files)('%s parses without an ERROR or MISSING node', (file) => {
    expect(syntaxProblems(readFileSync(path.join(infra, file), 'utf8'))).toEqual([]);
  });

  it('would fail on broken Bicep', () => {
    const broken =
      "resource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n  properties: {\n}\n";
    expect(syntaxProblems(broken)).not.toEqual([]);
    expect(syntaxProblems('param p string =\n')).not.toEqual([]);
  });
});

describe('app.bicep', () => {
  it('declares each resource the tests examine once', () => {
    expect({
      functionApp: functionApp?.type,
      identity: identity?.type,
      storage: storage?.type,
      insights: insights?.type,
      vault: vault?.type,
      appSettings: appSettingsResource?.type,
    }).toEqual({
      functionApp: 'Microsoft.Web/sites',
      identity: 'Microsoft.ManagedIdentity/userAssignedIdentities',
      storage: 'Microsoft.Storage/storageAccounts',
      insights: 'Microsoft.Insights/components',
      vault: 'Microsoft.KeyVault/vaults',
      appSettings: 'Microsoft.Web/sites/config',
    });
  });
});

describe('the function app', () => {
  it('runs on a Flex Consumption (FC1) Linux plan', () => {
    const plan = app.resourceReferenced(site('serverFarmId'));
    expect(plan?.type).toBe('Microsoft.Web/serverfarms');
    expect(isReference(site('serverFarmId'), plan?.symbol ?? '', 'id')).toBe(true);
    expect(literal(propertyAt(plan?.body, 'sku', 'name'))).toBe('FC1');
    expect(literal(propertyAt(plan?.body, 'sku', 'tier'))).toBe('FlexConsumption');
    expect(literal(propertyAt(plan?.body, 'properties', 'reserved'))).toBe(true);
    expect(literal(propertyAt(functionApp?.body, 'kind'))).toBe('functionapp,linux');
  });

  it('runs Node.js 22', () => {
    expect(literal(site('functionAppConfig', 'runtime', 'name'))).toBe('node');
    expect(literal(site('functionAppConfig', 'runtime', 'version'))).toBe('22');
  });

  it('takes HTTPS only, TLS 1.2 at least, and no FTP', () => {
    expect(literal(site('httpsOnly'))).toBe(true);
    expect(literal(site('siteConfig', 'minTlsVersion'))).toBe('1.2');
    expect(literal(site('siteConfig', 'scmMinTlsVersion'))).toBe('1.2');
    expect(literal(site('siteConfig', 'ftpsState'))).toBe('Disabled');
    const basicAuth = app
      .resourcesOfType('Microsoft.Web/sites/basicPublishingCredentialsPolicies')
      .filter((policy) => parentOf(policy) === functionApp);
    expect(basicAuth.map((policy) => literal(propertyAt(policy.body, 'name'))).sort()).toEqual([
      'ftp',
      'scm',
    ]);
    for (const policy of basicAuth) {
      expect(literal(propertyAt(policy.body, 'properties', 'allow'))).toBe(false);
    }
  });

  it('runs as the user-assigned identity, which also reads its Key Vault references', () => {
    expect(literal(propertyAt(functionApp?.body, 'identity', 'type'))).toBe('UserAssigned');
    const assigned = propertyAt(functionApp?.body, 'identity', 'userAssignedIdentities');
    const keys = assigned?.namedChildren
      .filter((child) => child.type === 'object_property')
      .map((property) => stringParts(property.namedChildren[0]));
    expect(keys).toHaveLength(1);
    expect(isReference(keys?.[0]?.[0] as Node, identitySymbol, 'id')).toBe(true);
    expect(isReference(site('keyVaultReferenceIdentity'), identitySymbol, 'id')).toBe(true);
  });

  it('deploys from a blob container of its storage account, reached with its identity', () => {
    const deployment = site('functionAppConfig', 'deployment', 'storage');
    expect(literal(propertyAt(deployment, 'type'))).toBe('blobContainer');
    expect(literal(propertyAt(deployment, 'authentication', 'type'))).toBe('UserAssignedIdentity');
    expect(
      isReference(
        propertyAt(deployment, 'authentication', 'userAssignedIdentityResourceId'),
        identitySymbol,
        'id',
      ),
    ).toBe(true);
    const [endpoint, container] = stringParts(propertyAt(deployment, 'value')) ?? [];
    expect(
      isReference(endpoint as Node, storageSymbol, 'properties', 'primaryEndpoints', 'blob'),
    ).toBe(true);
    const containerName = literal(app.resolve(container as Node));
    const containers = app
      .resourcesOfType('Microsoft.Storage/storageAccounts/blobServices/containers')
      .map((resource) => literal(app.resolve(propertyAt(resource.body, 'name'))));
    expect(containers).toContain(containerName);
  });

  it('is the `app` service azd deploys to', () => {
    const tags = propertyAt(functionApp?.body, 'tags');
    const tagObjects = call(tags)?.args ?? [tags];
    const serviceTag = tagObjects
      .map((object) => literal(objectProperties(object).get('azd-service-name')))
      .find((value) => value !== undefined);
    const azureYaml = parseYaml(readFileSync(path.join(root, 'azure.yaml'), 'utf8')) as {
      services: Record<string, { host: string; language: string }>;
    };
    expect(Object.keys(azureYaml.services)).toEqual([serviceTag]);
    expect(azureYaml.services[serviceTag as string]).toMatchObject({
      host: 'function',
      language: 'ts',
    });
  });
});

// ---- A deployment as Azure makes it: parameter values in, app settings out ----

// Stand-ins for what Azure fills in at deployment.
const identityClientId = '0c1d2e3f-0000-4000-8000-00000000c11d';
const vaultUri = 'https://kv-example.vault.azure.net/';
const runtime = new Map<string, Value>([
  [`${identitySymbol}.properties.clientId`, identityClientId],
  [`${storageSymbol}.name`, 'stexample'],
  [
    `${storageSymbol}.properties.primaryEndpoints.table`,
    'https://stexample.table.core.windows.net/',
  ],
  [`${functionApp?.symbol}.name`, 'func-example'],
  [`${functionApp?.symbol}.properties.defaultHostName`, 'func-example.azurewebsites.net'],
  [
    `${insights?.symbol}.properties.ConnectionString`,
    'InstrumentationKey=00000000-0000-4000-8000-000000000001;IngestionEndpoint=https://example.in.applicationinsights.azure.com/',
  ],
  [`${vault?.symbol}.properties.vaultUri`, vaultUri],
]);

/**
 * The app's vault as App Service reads it through Key Vault references
 * (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references): a SecretUri
 * with a version names that version, one without (`…/secrets/<name>/`) the latest; a reference that
 * does not resolve reaches the app as its own text. A certificate is kept as the secret of its name
 * (https://learn.microsoft.com/azure/key-vault/certificates/about-certificates).
 */
class KeyVaultStandIn {
  private readonly secrets = new Map<string, { version: string; value: string }[]>();

  /** Adds a version of a secret (or of a certificate's secret) and returns its versioned URI. */
  set(name: string, value: string): string {
    const version = randomBytes(16).toString('hex');
    this.secrets.set(name, [...(this.secrets.get(name) ?? []), { version, value }]);
    return `${vaultUri}secrets/${name}/${version}`;
  }

  resolve(setting: string): string {
    const uri = /^@Microsoft\.KeyVault\(SecretUri=(.*)\)$/.exec(setting)?.[1];
    if (uri === undefined || !uri.startsWith(`${vaultUri}secrets/`)) return setting;
    const [name, version, ...rest] = uri.slice(`${vaultUri}secrets/`.length).split('/');
    const versions = this.secrets.get(name ?? '') ?? [];
    const found =
      rest.length > 0 || version === undefined
        ? undefined
        : version === ''
          ? versions.at(-1)
          : versions.find((v) => v.version === version);
    return found?.value ?? setting;
  }
}

const key = randomBytes(32).toString('base64');
const clientSecret = 'a-client-secret-from-the-registration';
const REQUIRED_VALUES: Record<string, Value> = {
  environmentName: 'example',
  location: 'swedencentral',
  tenantSubdomain: 'contoso',
  clientId: '11111111-2222-4333-8444-555555555555',
  clientSecret,
  todoListEndpoint: 'https://api.contoso.example/api/todolist',
  todoListReadScope: 'api://66666666-7777-4888-8999-000000000000/ToDoList.Read',
  todoListReadWriteScope: 'api://66666666-7777-4888-8999-000000000000/ToDoList.ReadWrite',
  sessionKeys: key,
  tokenCacheKeys: key,
};

interface Deployment {
  /** The app settings as written, Key Vault references unresolved. */
  readonly settings: Record<string, string>;
  /** What the app reads: the references resolved. */
  readonly env: Environment;
  readonly vault: KeyVaultStandIn;
  readonly app: BicepEvaluator;
}

/**
 * Deploys main.bicep with these parameters (the rest at their defaults). `before` runs on the
 * vault first, as a certificate made by hand would be there before the deployment.
 */
function deploy(
  values: Record<string, Value> = {},
  before: (vault: KeyVaultStandIn) => void = () => {},
): Deployment {
  const vault = new KeyVaultStandIn();
  before(vault);
  const parameters = { ...REQUIRED_VALUES, ...values };
  const mainEvaluator = new BicepEvaluator(
    main,
    (name) => parameters[name],
    () => undefined,
  );
  const moduleParams = objectProperties(propertyAt(appModule?.body, 'params'));
  const written = new Map<string, string>();
  const appEvaluator: BicepEvaluator = new BicepEvaluator(
    app,
    (name) => mainEvaluator.evaluate(moduleParams.get(name)),
    (reference) => runtime.get(reference) ?? written.get(reference),
  );
  // Every secret the deployment writes, whether a setting refers to it or not.
  for (const secret of app.resourcesOfType('Microsoft.KeyVault/vaults/secrets')) {
    if (!appEvaluator.deploys(secret.symbol)) continue;
    const name = appEvaluator.evaluate(propertyAt(secret.body, 'name'));
    const value = appEvaluator.evaluate(propertyAt(secret.body, 'properties', 'value'));
    if (typeof name !== 'string' || typeof value !== 'string') {
      throw new Error(`${secret.symbol}: a secret's name and value are strings`);
    }
    written.set(`${secret.symbol}.properties.secretUriWithVersion`, vault.set(name, value));
  }
  const settings = appEvaluator.evaluate(appSettingsValue) as Record<string, string>;
  const env = Object.fromEntries(
    Object.entries(settings).map(([name, value]) => [name, vault.resolve(value)]),
  );
  return { settings, env, vault, app: appEvaluator };
}

/** A certificate and its key as Key Vault hands out one whose policy says application/x-pem-file. */
const pemCertificate = generate([{ name: 'commonName', value: 'bff web app' }], {
  keyType: 'rsa',
  keySize: 2048,
  algorithm: 'sha256',
}).then((pair) => ({ pem: `${pair.private}${pair.cert}`, cert: pair.cert }));

describe('the app settings', () => {
  it.each(Object.entries(CREDENTIAL_SETTINGS))(
    'with clientCredential %s, set every setting of src/lib/config.ts but the documented exceptions',
    async (choice, { absent }) => {
      const { pem } = await pemCertificate;
      const { settings } = deploy({ clientCredential: choice }, (vault) =>
        vault.set('client-certificate', pem),
      );
      for (const name of SETTING_NAMES) {
        const why =
          INTENTIONALLY_ABSENT[name] ?? (name === absent ? `not with ${choice}` : undefined);
        expect(name in settings, `${name}: ${why ?? 'must be set'}`).toBe(why === undefined);
      }
    },
  );

  it.each(Object.entries(SECRET_SETTINGS))(
    '%s is a Key Vault reference to the secret holding @secure() %s',
    (name, param) => {
      const node = appSettings.get(name) ?? credentialSettings.secret.get(name);
      const [prefix, uri, suffix, ...rest] = stringParts(node) ?? [];
      expect([prefix, suffix, rest]).toEqual(['@Microsoft.KeyVault(SecretUri=', ')', []]);
      const path = referencePath(uri as Node) ?? [];
      expect(path.slice(1)).toEqual(['properties', 'secretUriWithVersion']);
      const secret = app.resources.get(path[0] ?? '');
      expect(secret?.type).toBe('Microsoft.KeyVault/vaults/secrets');
      expect(parentOf(secret as Resource)?.type).toBe('Microsoft.KeyVault/vaults');
      const value = propertyAt(secret?.body, 'properties', 'value');
      // The value, or (clientSecret) a fail() when it is empty.
      const used =
        value?.type === 'ternary_expression' ? value.childForFieldName('alternative') : value;
      expect(isReference(used ?? undefined, param)).toBe(true);
      expect(app.params.get(param)?.decorators).toContain('secure');
    },
  );

  it('give no setting a secure parameter or a secret as a plain value', () => {
    const secure = [...app.params.values()].filter((param) => param.decorators.includes('secure'));
    expect(secure.map((param) => param.name).sort()).toEqual(Object.values(SECRET_SETTINGS).sort());
    const referencesIn = (node: Node): string[] => [
      ...(node.type === 'identifier' ? [node.text] : []),
      ...node.namedChildren.flatMap(referencesIn),
    ];
    const settingExpressions = [
      ...appSettings,
      ...credentialSettings.secret,
      ...credentialSettings.certificate,
      ['downstreamApiSettings', app.variables.get('downstreamApiSettings')] as const,
    ];
    for (const [name, value] of settingExpressions) {
      if (value === undefined) throw new Error(`${name}: no expression`);
      const used = referencesIn(value);
      for (const param of secure) expect(used, name).not.toContain(param.name);
      // Account keys and secret values never reach a setting either.
      expect(value.text, name).not.toMatch(/listKeys|listSecrets|AccountKey|SharedAccessSignature/);
    }
    // And as written: no secret value in any setting until the platform resolves the references.
    const written = Object.values(deploy().settings).join('\n');
    expect(written).not.toContain(clientSecret);
    expect(written).not.toContain(key);
  });

  it('turn off the host home page, so `/` never shows it (AzureWebJobsDisableHomepage)', () => {
    expect(literal(appSettings.get('AzureWebJobsDisableHomepage'))).toBe('true');
  });

  it('connect to storage with the identity: the host and the token cache', () => {
    const setting = (name: string) => appSettings.get(name);
    expect(isReference(setting('AzureWebJobsStorage__accountName'), storageSymbol, 'name')).toBe(
      true,
    );
    expect(literal(setting('AzureWebJobsStorage__credential'))).toBe('managedidentity');
    expect(
      isReference(
        setting('AzureWebJobsStorage__clientId'),
        identitySymbol,
        'properties',
        'clientId',
      ),
    ).toBe(true);
    expect(
      isReference(
        setting('TOKEN_CACHE_STORAGE__tableServiceUri'),
        storageSymbol,
        'properties',
        'primaryEndpoints',
        'table',
      ),
    ).toBe(true);
    expect(literal(setting('TOKEN_CACHE_STORAGE__credential'))).toBe('managedidentity');
    expect(
      isReference(
        setting('TOKEN_CACHE_STORAGE__clientId'),
        identitySymbol,
        'properties',
        'clientId',
      ),
    ).toBe(true);
    const table = app.resourceReferenced(setting('TOKEN_CACHE_TABLE'));
    expect(table?.type).toBe('Microsoft.Storage/storageAccounts/tableServices/tables');
    expect(parentOf(parentOf(table as Resource) as Resource)).toBe(storage);
  });

  it('send telemetry with Entra ID as the identity', () => {
    const [prefix, clientId, ...rest] =
      stringParts(appSettings.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')) ?? [];
    expect(prefix).toBe('Authorization=AAD;ClientId=');
    expect(isReference(clientId as Node, identitySymbol, 'properties', 'clientId')).toBe(true);
    expect(rest).toEqual([]);
    expect(app.resourceReferenced(appSettings.get('APPLICATIONINSIGHTS_CONNECTION_STRING'))).toBe(
      insights,
    );
    // The host samples in OpenTelemetry mode by these, not by host.json.
    expect(literal(appSettings.get('OTEL_TRACES_SAMPLER'))).toBe('microsoft.rate_limited');
    expect(referencePath(call(appSettings.get('OTEL_TRACES_SAMPLER_ARG'))?.args[0])).toEqual([
      'telemetryTracesPerSecond',
    ]);
  });

  it('derive the redirect URIs from the app’s own host name', () => {
    const appUrl = stringParts(app.variables.get('appUrl'));
    expect(appUrl?.[0]).toBe('https://');
    expect(
      isReference(appUrl?.[1] as Node, functionApp?.symbol ?? '', 'properties', 'defaultHostName'),
    ).toBe(true);
    const redirect = stringParts(appSettings.get('REDIRECT_URI'));
    expect(isReference(redirect?.[0] as Node, 'appUrl')).toBe(true);
    expect(redirect?.slice(1)).toEqual(['/auth/redirect']);
    const postLogout = stringParts(appSettings.get('POST_LOGOUT_REDIRECT_URI'));
    expect(isReference(postLogout?.[0] as Node, 'appUrl')).toBe(true);
    expect(postLogout?.slice(1)).toEqual(['/']);
  });
});

describe('the settings as Azure resolves them', () => {
  it('make a configuration the app accepts, with identity-based storage and telemetry', () => {
    const { env } = deploy();
    const config = loadConfig(env);
    expect(config.authority).toBe('https://contoso.ciamlogin.com/');
    expect(config.clientCredential).toEqual({ kind: 'secret', secret: clientSecret });
    expect(config.redirectUri).toBe('https://func-example.azurewebsites.net/auth/redirect');
    expect(config.postLogoutRedirectUri).toBe('https://func-example.azurewebsites.net/');
    expect(config.tokenCache.connection).toEqual({
      kind: 'identity',
      tableServiceUri: 'https://stexample.table.core.windows.net/',
      clientId: identityClientId,
    });
    expect(config.tokenCache.tableName).toBe('tokencache');
    expect(env.AUTHORITY).toBe('');
    expect(config.telemetry).toEqual({
      connectionString: runtime.get(`${insights?.symbol}.properties.ConnectionString`),
      managedIdentity: { clientId: identityClientId },
    });
    // Without extra APIs: todos alone, from the TODOLIST_* settings.
    expect(env.DOWNSTREAM_APIS).toBe('todos');
    expect(config.downstreamApis.map((api) => api.name)).toEqual(['todos']);
  });

  it('take the authority of a custom URL domain from the authority parameter (ENTRA_AUTHORITY)', () => {
    // https://learn.microsoft.com/entra/external-id/customers/how-to-custom-url-domain: the
    // authority becomes the custom domain with the tenant ID as its path.
    const custom = 'https://login.contoso.example/0b5c7a7e-3d41-4f6e-9a2c-5d8e1f0a7b3c/';
    expect(loadConfig(deploy({ authority: custom }).env).authority).toBe(custom);
  });
});

describe('clientCredential certificate: CLIENT_CERTIFICATE from a Key Vault certificate', () => {
  it('is a versionless reference to the certificate’s secret in the app’s vault, and CLIENT_SECRET is not set', async () => {
    const { pem } = await pemCertificate;
    const { settings } = deploy({ clientCredential: 'certificate' }, (vault) =>
      vault.set('client-certificate', pem),
    );
    expect(settings.CLIENT_CERTIFICATE).toBe(
      `@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/client-certificate/)`,
    );
    expect(settings).not.toHaveProperty('CLIENT_SECRET');
    // The vault is the one the identity reads secrets of (Key Vault Secrets User, below).
    const [prefix, uri] =
      stringParts(credentialSettings.certificate.get('CLIENT_CERTIFICATE')) ?? [];
    expect(prefix).toBe('@Microsoft.KeyVault(SecretUri=');
    expect(isReference(uri as Node, vault?.symbol ?? '', 'properties', 'vaultUri')).toBe(true);
  });

  it('gives the app the PEM certificate, which it accepts, and deploys no client secret', async () => {
    const { pem, cert } = await pemCertificate;
    const deployment = deploy({ clientCredential: 'certificate', clientSecret: '' }, (vault) =>
      vault.set('client-certificate', pem),
    );
    const config = loadConfig(deployment.env);
    expect(config.clientCredential).toMatchObject({
      kind: 'certificate',
      thumbprintSha256: new X509Certificate(cert).fingerprint256.replace(/:/g, '').toLowerCase(),
    });
    const secretResource = credentialSecretSymbol();
    expect(deployment.app.deploys(secretResource)).toBe(false);
    expect(deploy({ clientCredential: 'secret' }).app.deploys(secretResource)).toBe(true);
  });

  it('follows the certificate’s latest version (a renewal) without a deployment', async () => {
    const [first, second] = await Promise.all([
      pemCertificate,
      generate([{ name: 'commonName', value: 'bff web app, renewed' }], {
        keyType: 'rsa',
        keySize: 2048,
        algorithm: 'sha256',
      }).then((pair) => ({ pem: `${pair.private}${pair.cert}`, cert: pair.cert })),
    ]);
    const { settings, vault } = deploy({ clientCredential: 'certificate' }, (v) =>
      v.set('client-certificate', first.pem),
    );
    vault.set('client-certificate', second.pem);
    const env = Object.fromEntries(
      Object.entries(settings).map(([name, value]) => [name, vault.resolve(value)]),
    );
    expect(loadConfig(env).clientCredential).toMatchObject({
      thumbprintSha256: new X509Certificate(second.cert).fingerprint256
        .replace(/:/g, '')
        .toLowerCase(),
    });
  });

  it('takes another certificate name from clientCertificateName (ENTRA_CLIENT_CERTIFICATE_NAME)', async () => {
    const { pem } = await pemCertificate;
    const { env } = deploy(
      { clientCredential: 'certificate', clientCertificateName: 'bff-signing' },
      (vault) => vault.set('bff-signing', pem),
    );
    expect(loadConfig(env).clientCredential.kind).toBe('certificate');
  });

  it('before the certificate exists, stops the app at start-up rather than using another credential', () => {
    // App Service passes an unresolved reference on as its own text.
    const { env } = deploy({ clientCredential: 'certificate' });
    expect(env.CLIENT_CERTIFICATE).toMatch(/^@Microsoft\.KeyVault\(/);
    expect(() => loadConfig(env)).toThrow(/CLIENT_CERTIFICATE/);
  });

  it('with the secret chosen, an empty clientSecret fails the deployment, naming ENTRA_CLIENT_SECRET', () => {
    expect(() => deploy({ clientSecret: '' })).toThrow(BicepFailure);
    expect(() => deploy({ clientSecret: '' })).toThrow(/ENTRA_CLIENT_SECRET/);
  });

  it('offers exactly the two choices, the secret by default', () => {
    const type = main.params.get('clientCredential')?.type;
    const choices = type?.namedChildren[0]?.namedChildren.map((choice) => literal(choice));
    expect(choices?.sort()).toEqual(['certificate', 'secret']);
    expect(literal(main.params.get('clientCredential')?.defaultValue)).toBe('secret');
  });
});

/** The Key Vault secret resource CLIENT_SECRET refers to. */
function credentialSecretSymbol(): string {
  const [, uri] = stringParts(credentialSettings.secret.get('CLIENT_SECRET')) ?? [];
  return referencePath(uri as Node)?.[0] ?? '(none)';
}

describe('downstreamApis: the APIs besides todos (DOWNSTREAM_APIS_JSON)', () => {
  const notes = {
    name: 'notes',
    url: 'https://notes.contoso.example/api',
    readScopes: ['api://77777777-0000-4000-8000-000000000001/Notes.Read'],
    writeScopes: ['api://77777777-0000-4000-8000-000000000001/Notes.ReadWrite'],
  };
  const orders = {
    name: 'orders-v2',
    url: 'https://orders.contoso.example',
    readScopes: ['api://77777777-0000-4000-8000-000000000002/Orders.Read'],
    writeScopes: [
      'api://77777777-0000-4000-8000-000000000002/Orders.Read',
      'api://77777777-0000-4000-8000-000000000002/Orders.Write',
    ],
    timeoutMs: 2500,
  };

  it('become DOWNSTREAM_APIS (todos first) and each API’s settings, which the app accepts', () => {
    const { settings, env } = deploy({ downstreamApis: [notes, orders] });
    expect(settings).toMatchObject({
      DOWNSTREAM_APIS: 'todos,notes,orders-v2',
      DOWNSTREAM_API_NOTES_URL: notes.url,
      DOWNSTREAM_API_NOTES_READ_SCOPES: notes.readScopes[0],
      DOWNSTREAM_API_NOTES_WRITE_SCOPES: notes.writeScopes[0],
      DOWNSTREAM_API_NOTES_TIMEOUT_MS: '10000',
      DOWNSTREAM_API_ORDERS_V2_URL: orders.url,
      DOWNSTREAM_API_ORDERS_V2_WRITE_SCOPES: orders.writeScopes.join(' '),
      DOWNSTREAM_API_ORDERS_V2_TIMEOUT_MS: '2500',
    });
    // Not secrets: plain values, no Key Vault.
    expect(Object.keys(settings).filter((name) => name.startsWith('DOWNSTREAM_API'))).toHaveLength(
      9,
    );
    expect(
      Object.entries(settings).filter(
        ([name, value]) => name.startsWith('DOWNSTREAM_API') && value.startsWith('@Microsoft'),
      ),
    ).toEqual([]);
    expect(loadConfig(env).downstreamApis).toEqual([
      expect.objectContaining({ name: 'todos', url: 'https://api.contoso.example/api/todolist' }),
      {
        name: 'notes',
        url: notes.url,
        readScopes: notes.readScopes,
        writeScopes: notes.writeScopes,
        timeoutMs: 10000,
      },
      {
        name: 'orders-v2',
        url: orders.url,
        readScopes: orders.readScopes,
        writeScopes: orders.writeScopes,
        timeoutMs: 2500,
      },
    ]);
  });

  it('refuses what the app would refuse, before anything is deployed, all in one message', () => {
    const attempt = () =>
      deploy({
        downstreamApis: [
          { ...notes, name: 'Notes' },
          { ...notes, name: 'todos' },
          { ...orders, url: 'http://orders.contoso.example' },
          { ...orders, name: 'orders-v2', url: 'https://orders.contoso.example/?tenant=1' },
          { ...notes, name: 'spaced', readScopes: ['api://x/A api://x/B'] },
          { ...notes, name: 'quoted', writeScopes: ['api://x/"A'] },
          { ...notes, name: 'blank', writeScopes: [''] },
        ],
      });
    expect(attempt).toThrow(BicepFailure);
    const message = (() => {
      try {
        attempt();
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    for (const part of [
      'name "Notes" must be',
      'name "todos" is the ToDoList API',
      'name "orders-v2" is given twice',
      'orders-v2: url must be https without a query or fragment, got "http://orders.contoso.example"',
      'got "https://orders.contoso.example/?tenant=1"',
      'spaced: each scope',
      'quoted: each scope',
      'blank: each scope',
    ]) {
      expect(message).toContain(part);
    }
  });

  it('accept exactly the names the app accepts (property)', () => {
    const names = fc.oneof(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/),
      fc.string({ unit: fc.constantFrom(...'abz09-_A Z,.é'), maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(names, { maxLength: 3 }), (list) => {
        let env: Environment;
        try {
          env = deploy({ downstreamApis: list.map((name) => ({ ...notes, name })) }).env;
        } catch (error) {
          if (!(error instanceof BicepFailure)) throw error;
          // Refused here: the app refuses the same list.
          const appEnv = {
            ...deploy().env,
            DOWNSTREAM_APIS: ['todos', ...list].join(','),
            ...Object.fromEntries(
              list.flatMap((name) => {
                const prefix = `DOWNSTREAM_API_${name.toUpperCase().replaceAll('-', '_')}_`;
                return [
                  [`${prefix}URL`, notes.url],
                  [`${prefix}READ_SCOPES`, notes.readScopes[0]],
                  [`${prefix}WRITE_SCOPES`, notes.writeScopes[0]],
                ];
              }),
            ),
          };
          expect(() => loadConfig(appEnv)).toThrow(ConfigError);
          return;
        }
        // Accepted here: the app starts with them.
        expect(loadConfig(env).downstreamApis.map((api) => api.name)).toEqual(['todos', ...list]);
      }),
      { numRuns: 200 },
    );
  });

  it('have the app’s bounds in their type (types.bicep), sealed against misspelt properties', () => {
    const type = types.types.get('downstreamApi');
    const declaration = [...types.types.keys()];
    expect(declaration).toEqual(['downstreamApi']);
    const decoratorsOf = (property: string): Record<string, unknown> => {
      const children = type?.namedChildren ?? [];
      const index = children.findIndex(
        (child) => child.type === 'object_property' && child.namedChildren[0]?.text === property,
      );
      const decorators =
        children[index - 1]?.type === 'decorators' ? children[index - 1] : undefined;
      return Object.fromEntries(
        (decorators?.namedChildren ?? []).map((decorator) => {
          const invoked = call(decorator.namedChildren[0]);
          return [invoked?.name ?? '', literal(invoked?.args[0])];
        }),
      );
    };
    expect(decoratorsOf('name')).toMatchObject({ minLength: 1, maxLength: 32 });
    expect(decoratorsOf('readScopes')).toMatchObject({ minLength: 1 });
    expect(decoratorsOf('writeScopes')).toMatchObject({ minLength: 1 });
    const { minValue, maxValue } = decoratorsOf('timeoutMs') as {
      minValue: number;
      maxValue: number;
    };
    // The app's own range for DOWNSTREAM_API_<NAME>_TIMEOUT_MS.
    const withTimeout = (timeoutMs: number) => () =>
      loadConfig(deploy({ downstreamApis: [{ ...notes, timeoutMs }] }).env);
    expect(withTimeout(minValue)).not.toThrow();
    expect(withTimeout(maxValue)).not.toThrow();
    expect(withTimeout(minValue - 1)).toThrow(/DOWNSTREAM_API_NOTES_TIMEOUT_MS/);
    expect(withTimeout(maxValue + 1)).toThrow(/DOWNSTREAM_API_NOTES_TIMEOUT_MS/);
    const typeDecorators = types.types.get('downstreamApi')?.parent?.previousNamedSibling;
    expect(typeDecorators?.text).toMatch(/@sealed\(\)/);
    expect(typeDecorators?.text).toMatch(/@export\(\)/);
    // main.bicep and app.bicep both take an array of it.
    expect(main.params.get('downstreamApis')?.type?.text).toBe('downstreamApi[]');
    expect(app.params.get('downstreamApis')?.type?.text).toBe('downstreamApi[]');
  });
});

describe('the resources the app uses', () => {
  it('storage: no shared key, TLS 1.2, HTTPS only, no public blob access', () => {
    const properties = propertyAt(storage?.body, 'properties');
    expect(literal(propertyAt(properties, 'allowSharedKeyAccess'))).toBe(false);
    expect(literal(propertyAt(properties, 'minimumTlsVersion'))).toBe('TLS1_2');
    expect(literal(propertyAt(properties, 'supportsHttpsTrafficOnly'))).toBe(true);
    expect(literal(propertyAt(properties, 'allowBlobPublicAccess'))).toBe(false);
    for (const container of app.resourcesOfType(
      'Microsoft.Storage/storageAccounts/blobServices/containers',
    )) {
      expect(literal(propertyAt(container.body, 'properties', 'publicAccess'))).toBe('None');
    }
  });

  it('Application Insights and Log Analytics: local authentication disabled', () => {
    expect(literal(propertyAt(insights?.body, 'properties', 'DisableLocalAuth'))).toBe(true);
    const workspace = app.resourceReferenced(
      propertyAt(insights?.body, 'properties', 'WorkspaceResourceId'),
    );
    expect(workspace?.type).toBe('Microsoft.OperationalInsights/workspaces');
    expect(literal(propertyAt(workspace?.body, 'properties', 'features', 'disableLocalAuth'))).toBe(
      true,
    );
  });

  it('Key Vault: RBAC, soft delete, purge protection from a parameter', () => {
    const properties = propertyAt(vault?.body, 'properties');
    expect(literal(propertyAt(properties, 'enableRbacAuthorization'))).toBe(true);
    expect(literal(propertyAt(properties, 'enableSoftDelete'))).toBe(true);
    const purge = propertyAt(properties, 'enablePurgeProtection');
    expect(purge?.type).toBe('ternary_expression');
    expect(
      isReference(purge?.childForFieldName('condition') ?? undefined, 'keyVaultPurgeProtection'),
    ).toBe(true);
  });
});

describe('the role assignments', () => {
  const assignments = app
    .resourcesOfType('Microsoft.Authorization/roleAssignments')
    .map((resource) => {
      const properties = propertyAt(resource.body, 'properties');
      const definition = call(propertyAt(properties, 'roleDefinitionId'));
      return {
        symbol: resource.symbol,
        function: definition?.name,
        definitionType: literal(definition?.args[0]),
        role: literal(app.resolve(definition?.args[1])),
        scope: app.resourceReferenced(propertyAt(resource.body, 'scope'))?.type,
        principal: referencePath(propertyAt(properties, 'principalId'))?.join('.'),
        principalType: literal(propertyAt(properties, 'principalType')),
      };
    });

  it('are exactly the least-privilege roles, each on its resource', () => {
    expect(
      assignments
        .map(({ role, scope }) => ({ role, scope }))
        .sort((a, b) => String(a.role).localeCompare(String(b.role))),
    ).toEqual(
      [
        { role: ROLE.storageBlobDataOwner, scope: 'Microsoft.Storage/storageAccounts' },
        { role: ROLE.storageTableDataContributor, scope: 'Microsoft.Storage/storageAccounts' },
        { role: ROLE.monitoringMetricsPublisher, scope: 'Microsoft.Insights/components' },
        { role: ROLE.keyVaultSecretsUser, scope: 'Microsoft.KeyVault/vaults' },
      ].sort((a, b) => a.role.localeCompare(b.role)),
    );
  });

  it('are granted to the app’s identity, as built-in role definitions', () => {
    for (const assignment of assignments) {
      expect(assignment, assignment.symbol).toMatchObject({
        function: 'subscriptionResourceId',
        definitionType: 'Microsoft.Authorization/roleDefinitions',
        principal: `${identitySymbol}.properties.principalId`,
        principalType: 'ServicePrincipal',
      });
    }
  });

  it('exist before the settings that need them are written', () => {
    const dependsOn = propertyAt(appSettingsResource?.body, 'dependsOn')?.namedChildren.map(
      (node) => node.text,
    );
    expect(dependsOn?.sort()).toEqual(assignments.map((assignment) => assignment.symbol).sort());
  });
});

describe('the parameters', () => {
  const parametersFile = JSON.parse(
    readFileSync(path.join(infra, 'main.parameters.json'), 'utf8'),
  ) as { parameters: Record<string, { value: unknown }> };
  const substitutions = new Map(
    Object.entries(parametersFile.parameters).map(([name, { value }]) => [name, value]),
  );

  it('main.parameters.json gives every parameter of main.bicep as an azd substitution', () => {
    expect([...substitutions.keys()].sort()).toEqual([...main.params.keys()].sort());
    for (const [name, value] of substitutions) {
      expect(value, name).toMatch(/^\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}$/);
    }
  });

  it('requires (no `=default` in the file) exactly the parameters without a default in Bicep', () => {
    for (const param of main.params.values()) {
      const fileDefault = /=([^}]*)\}$/.exec(String(substitutions.get(param.name)))?.[1];
      if (param.defaultValue === undefined) {
        expect(fileDefault, `${param.name} has no default`).toBeUndefined();
      } else if (literal(param.defaultValue) === undefined) {
        // An array: azd leaves it out while its variable is unset ("Omit unset parameters" in
        // loadParameters, cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go), so Bicep's
        // default applies; a `=[]` could not hold the JSON anyway.
        expect(fileDefault, `${param.name} takes Bicep's default`).toBeUndefined();
        expect(param.defaultValue.type, param.name).toBe('array');
      } else {
        expect(fileDefault, `${param.name}'s default`).toBe(String(literal(param.defaultValue)));
      }
    }
  });

  it('take downstreamApis as one JSON value, which azd parses for an array parameter', () => {
    // azd 1.23.4 and later (Azure/azure-dev#6694): for an array or object parameter whose value in
    // main.parameters.json is a string, azd substitutes the variable and parses the result as JSON
    // ("Path A" in loadParameters, cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go).
    expect(substitutions.get('downstreamApis')).toBe('${DOWNSTREAM_APIS_JSON}');
    expect(main.params.get('downstreamApis')?.type?.namedChildren[0]?.type).toBe('array_type');
    const fromJson = JSON.parse(
      '[{"name":"notes","url":"https://notes.contoso.example","readScopes":["api://n/Notes.Read"],"writeScopes":["api://n/Notes.Write"]}]',
    ) as Value;
    expect(deploy({ downstreamApis: fromJson }).settings.DOWNSTREAM_APIS).toBe('todos,notes');
  });

  it('pass every module parameter, and secrets only into @secure() ones', () => {
    const passed = objectProperties(propertyAt(appModule?.body, 'params'));
    expect([...passed.keys()].sort()).toEqual([...app.params.keys()].sort());
    for (const [name, value] of passed) {
      const source = main.params.get(referencePath(value)?.[0] ?? '');
      if (source?.decorators.includes('secure')) {
        expect(app.params.get(name)?.decorators, name).toContain('secure');
      }
    }
  });

  it('azure.yaml points azd at main.bicep and a package the hook stages', () => {
    const azureYaml = parseYaml(readFileSync(path.join(root, 'azure.yaml'), 'utf8')) as {
      infra: { provider: string; path: string; module: string };
      services: Record<string, { dist: string; remoteBuild: boolean; hooks: unknown }>;
    };
    expect(azureYaml.infra).toEqual({ provider: 'bicep', path: 'infra', module: 'main' });
    expect(
      existsSync(path.join(root, azureYaml.infra.path, `${azureYaml.infra.module}.bicep`)),
    ).toBe(true);
    for (const service of Object.values(azureYaml.services)) {
      // Deployed as staged: compiled app and production dependencies, no build on the server.
      expect(service).toMatchObject({ dist: 'dist/deploy', remoteBuild: false });
      const hook = 'infra/hooks/prepackage.mjs';
      expect(existsSync(path.join(root, hook))).toBe(true);
      expect(service.hooks).toEqual({
        prepackage: {
          posix: { shell: 'sh', run: `node ${hook}` },
          windows: { shell: 'pwsh', run: `node ${hook}` },
        },
      });
    }
  });

  it('main.bicep outputs the app URL and the URIs to register', () => {
    expect([...main.outputs.keys()]).toEqual(
      expect.arrayContaining(['APP_URL', 'REDIRECT_URI', 'POST_LOGOUT_REDIRECT_URI']),
    );
    for (const [output, moduleOutput] of [
      ['APP_URL', 'appUrl'],
      ['REDIRECT_URI', 'redirectUri'],
      ['POST_LOGOUT_REDIRECT_URI', 'postLogoutRedirectUri'],
    ] as const) {
      expect(referencePath(main.outputs.get(output))).toEqual(['app', 'outputs', moduleOutput]);
      expect(app.outputs.has(moduleOutput)).toBe(true);
    }
  });
});
