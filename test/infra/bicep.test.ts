import { randomBytes } from 'node:crypto';
import { existsSync, globSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig, SETTING_NAMES, type SettingName } from '../../src/lib/config.ts';
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

/**
 * Settings of src/lib/config.ts that Azure must not get, and why. Every other name is set on the
 * function app, so adding a setting to the app without adding it to the template fails here.
 */
const INTENTIONALLY_ABSENT: Partial<Record<SettingName, string>> = {
  DOWNSTREAM_APIS:
    'unset it means `todos`, which the TODOLIST_* settings define; more APIs are not yet Bicep parameters',
  TOKEN_CACHE_STORAGE:
    'a connection string: the storage account accepts no shared key, so the app uses TOKEN_CACHE_STORAGE__tableServiceUri with its managed identity',
  CLIENT_CERTIFICATE:
    'the alternative to CLIENT_SECRET (exactly one is set): the templates deploy the secret; a certificate is switched to by hand, a Key Vault reference to a PEM certificate (docs/deploy.md)',
};

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
const appSettings = objectProperties(propertyAt(appSettingsResource?.body, 'properties'));
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

describe('the app settings', () => {
  it('set every setting of src/lib/config.ts except the documented alternatives', () => {
    for (const name of SETTING_NAMES) {
      expect(appSettings.has(name), `${name}: ${INTENTIONALLY_ABSENT[name] ?? 'must be set'}`).toBe(
        INTENTIONALLY_ABSENT[name] === undefined,
      );
    }
  });

  it.each(Object.entries(SECRET_SETTINGS))(
    '%s is a Key Vault reference to the secret holding @secure() %s',
    (name, param) => {
      const [prefix, uri, suffix, ...rest] = stringParts(appSettings.get(name)) ?? [];
      expect([prefix, suffix, rest]).toEqual(['@Microsoft.KeyVault(SecretUri=', ')', []]);
      const path = referencePath(uri as Node) ?? [];
      expect(path.slice(1)).toEqual(['properties', 'secretUriWithVersion']);
      const secret = app.resources.get(path[0] ?? '');
      expect(secret?.type).toBe('Microsoft.KeyVault/vaults/secrets');
      expect(parentOf(secret as Resource)?.type).toBe('Microsoft.KeyVault/vaults');
      expect(isReference(propertyAt(secret?.body, 'properties', 'value'), param)).toBe(true);
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
    for (const [name, value] of appSettings) {
      const used = referencesIn(value);
      for (const param of secure) expect(used, name).not.toContain(param.name);
      // Account keys and secret values never reach a setting either.
      expect(value.text, name).not.toMatch(/listKeys|listSecrets|AccountKey|SharedAccessSignature/);
    }
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
  // Stand-ins for what Azure fills in at deployment: runtime properties, parameter values, and the
  // secrets behind the Key Vault references (the platform resolves those before the app starts).
  const identityClientId = '0c1d2e3f-0000-4000-8000-00000000c11d';
  const key = randomBytes(32).toString('base64');
  const runtime = new Map([
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
  ]);
  const values = new Map<string, string>([
    ['tenantSubdomain', 'contoso'],
    ['clientId', '11111111-2222-4333-8444-555555555555'],
    ['clientSecret', 'a-client-secret'],
    ['todoListEndpoint', 'https://api.contoso.example/api/todolist'],
    ['todoListReadScope', 'api://66666666-7777-4888-8999-000000000000/ToDoList.Read'],
    ['todoListReadWriteScope', 'api://66666666-7777-4888-8999-000000000000/ToDoList.ReadWrite'],
    ['sessionKeys', key],
    ['tokenCacheKeys', key],
    // Everything else as main.bicep defaults it.
    ...[...main.params.values()].flatMap((param) => {
      const value = literal(param.defaultValue);
      return value === undefined || value === null ? [] : [[param.name, String(value)] as const];
    }),
  ]);

  function evaluate(node: Node | undefined): string {
    const parts = stringParts(node);
    const [prefix, uri] = parts ?? [];
    if (prefix === '@Microsoft.KeyVault(SecretUri=') {
      const secret = app.resourceReferenced(uri as Node);
      return evaluate(propertyAt(secret?.body, 'properties', 'value'));
    }
    if (parts !== undefined) {
      return parts.map((part) => (typeof part === 'string' ? part : evaluate(part))).join('');
    }
    const invoked = call(node);
    if (invoked?.name === 'string') return evaluate(invoked.args[0]);
    const reference = referencePath(node)?.join('.') ?? '';
    if (app.variables.has(reference)) return evaluate(app.variables.get(reference));
    const resource = app.resources.get(reference.replace(/\.name$/, ''));
    const value =
      literalText(node) ??
      runtime.get(reference) ??
      values.get(reference) ??
      // A child resource's name is the one it declares.
      (resource === undefined ? undefined : evaluate(propertyAt(resource.body, 'name')));
    if (value === undefined) throw new Error(`no stand-in for ${node?.text ?? 'nothing'}`);
    return value;
  }

  function literalText(node: Node | undefined): string | undefined {
    const value = literal(node);
    return value === undefined || value === null ? undefined : String(value);
  }

  it('make a configuration the app accepts, with identity-based storage and telemetry', () => {
    const env = Object.fromEntries([...appSettings].map(([name, node]) => [name, evaluate(node)]));
    const config = loadConfig(env);
    expect(config.authority).toBe('https://contoso.ciamlogin.com/');
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
  });

  it('take the authority of a custom URL domain from the authority parameter (ENTRA_AUTHORITY)', () => {
    // https://learn.microsoft.com/entra/external-id/customers/how-to-custom-url-domain: the
    // authority becomes the custom domain with the tenant ID as its path.
    const custom = 'https://login.contoso.example/0b5c7a7e-3d41-4f6e-9a2c-5d8e1f0a7b3c/';
    values.set('authority', custom);
    try {
      const env = Object.fromEntries(
        [...appSettings].map(([name, node]) => [name, evaluate(node)]),
      );
      expect(loadConfig(env).authority).toBe(custom);
    } finally {
      values.set('authority', '');
    }
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
      } else {
        expect(fileDefault, `${param.name}'s default`).toBe(String(literal(param.defaultValue)));
      }
    }
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
