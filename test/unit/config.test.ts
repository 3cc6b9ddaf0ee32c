import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, SETTING_NAMES, type Environment } from '../../src/lib/config.ts';

const key = () => randomBytes(32).toString('base64');

function validEnv(overrides: Environment = {}): Environment {
  return {
    AUTHORITY: 'https://127.0.0.1:7443/tenant-id',
    CLIENT_ID: 'web-app-client-id',
    CLIENT_SECRET: 'web-app-secret',
    REDIRECT_URI: 'http://localhost:7071/auth/redirect',
    POST_LOGOUT_REDIRECT_URI: 'http://localhost:7071/',
    TODOLIST_ENDPOINT: 'http://127.0.0.1:7072/api/todolist',
    TODOLIST_READ: 'api://todo-api/ToDoList.Read',
    TODOLIST_READWRITE: 'api://todo-api/ToDoList.ReadWrite',
    TOKEN_CACHE_STORAGE: 'UseDevelopmentStorage=true',
    TOKEN_CACHE_KEYS: key(),
    SESSION_KEYS: key(),
    ...overrides,
  };
}

function problemsOf(env: Environment): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const TUTORIAL_TODOS = {
  TODOLIST_ENDPOINT: undefined,
  TODOLIST_READ: undefined,
  TODOLIST_READWRITE: undefined,
} as const;

describe('loadConfig: DOWNSTREAM_APIS', () => {
  it('reads every listed API in order, with its scopes, URL and timeout', () => {
    const config = loadConfig(
      validEnv({
        ...TUTORIAL_TODOS,
        DOWNSTREAM_APIS: 'orders, todos,billing-v2',
        DOWNSTREAM_API_ORDERS_URL: 'https://orders.example/v1/',
        DOWNSTREAM_API_ORDERS_READ_SCOPES: 'api://orders/Orders.Read  api://orders/Orders.List',
        DOWNSTREAM_API_ORDERS_WRITE_SCOPES: 'api://orders/Orders.Write',
        DOWNSTREAM_API_ORDERS_TIMEOUT_MS: '2500',
        DOWNSTREAM_API_TODOS_URL: 'http://127.0.0.1:7072/api/todolist',
        DOWNSTREAM_API_TODOS_READ_SCOPES: 'api://todo-api/ToDoList.Read',
        DOWNSTREAM_API_TODOS_WRITE_SCOPES: 'api://todo-api/ToDoList.ReadWrite',
        DOWNSTREAM_API_BILLING_V2_URL: 'http://[::1]:9000',
        DOWNSTREAM_API_BILLING_V2_READ_SCOPES: 'api://billing/Read',
        DOWNSTREAM_API_BILLING_V2_WRITE_SCOPES: 'api://billing/Write',
      }),
    );
    expect(config.downstreamApis).toEqual([
      {
        name: 'orders',
        url: 'https://orders.example/v1',
        readScopes: ['api://orders/Orders.Read', 'api://orders/Orders.List'],
        writeScopes: ['api://orders/Orders.Write'],
        timeoutMs: 2500,
      },
      {
        name: 'todos',
        url: 'http://127.0.0.1:7072/api/todolist',
        readScopes: ['api://todo-api/ToDoList.Read'],
        writeScopes: ['api://todo-api/ToDoList.ReadWrite'],
        timeoutMs: 10_000,
      },
      {
        name: 'billing-v2',
        url: 'http://[::1]:9000',
        readScopes: ['api://billing/Read'],
        writeScopes: ['api://billing/Write'],
        timeoutMs: 10_000,
      },
    ]);
  });

  it('lets DOWNSTREAM_API_TODOS_* win over the tutorial settings, and TODOLIST_TIMEOUT_MS serve todos', () => {
    const config = loadConfig(
      validEnv({
        DOWNSTREAM_API_TODOS_URL: 'https://todos.example/api',
        TODOLIST_TIMEOUT_MS: '700',
      }),
    );
    expect(config.downstreamApis[0]).toMatchObject({
      name: 'todos',
      url: 'https://todos.example/api',
      readScopes: ['api://todo-api/ToDoList.Read'],
      timeoutMs: 700,
    });
  });

  it('stops start-up naming every missing setting of every listed API, with the other problems', () => {
    const problems = problemsOf(
      validEnv({ ...TUTORIAL_TODOS, CLIENT_ID: undefined, DOWNSTREAM_APIS: 'todos,orders' }),
    );
    expect(problems).toEqual([
      'CLIENT_ID is missing',
      'DOWNSTREAM_API_TODOS_URL (or TODOLIST_ENDPOINT) is missing',
      'DOWNSTREAM_API_TODOS_READ_SCOPES (or TODOLIST_READ) is missing',
      'DOWNSTREAM_API_TODOS_WRITE_SCOPES (or TODOLIST_READWRITE) is missing',
      'DOWNSTREAM_API_ORDERS_URL is missing',
      'DOWNSTREAM_API_ORDERS_READ_SCOPES is missing',
      'DOWNSTREAM_API_ORDERS_WRITE_SCOPES is missing',
    ]);
  });

  it.each([
    ['Orders', 'must be comma-separated names'],
    ['9lives', 'must be comma-separated names'],
    ['a'.repeat(33), 'must be comma-separated names'],
    ['todos,,orders', 'must be comma-separated names'],
    ['todos,todos', 'names "todos" twice'],
    ['orders_v2', 'must be comma-separated names'],
  ])('refuses DOWNSTREAM_APIS=%s', (list, message) => {
    const problems = problemsOf(validEnv({ DOWNSTREAM_APIS: list }));
    expect(
      problems.some(
        (problem) => problem.startsWith('DOWNSTREAM_APIS') && problem.includes(message),
      ),
    ).toBe(true);
  });

  it('refuses a plain-http URL off loopback, credentials in it, and scopes of two resources in one API', () => {
    const problems = problemsOf(
      validEnv({
        DOWNSTREAM_APIS: 'todos,orders',
        DOWNSTREAM_API_ORDERS_URL: 'http://orders.example/v1',
        DOWNSTREAM_API_ORDERS_READ_SCOPES: 'api://orders/Read',
        DOWNSTREAM_API_ORDERS_WRITE_SCOPES: 'api://todo-api/ToDoList.ReadWrite',
        DOWNSTREAM_API_ORDERS_TIMEOUT_MS: '50',
      }),
    );
    expect(problems).toEqual([
      'DOWNSTREAM_API_ORDERS_URL must use https (http is allowed only for localhost)',
      'DOWNSTREAM_API_ORDERS_READ_SCOPES and DOWNSTREAM_API_ORDERS_WRITE_SCOPES must all be scopes of one API (one token per API), got "api://orders", "api://todo-api"',
      'DOWNSTREAM_API_ORDERS_TIMEOUT_MS must be a whole number from 100 to 120000, got "50"',
    ]);
    expect(
      problemsOf(validEnv({ DOWNSTREAM_API_TODOS_URL: 'https://user:pw@todos.example/' })),
    ).toEqual(['DOWNSTREAM_API_TODOS_URL must not contain credentials']);
  });
});

describe('loadConfig', () => {
  it('reads a complete local configuration with defaults', () => {
    const config = loadConfig(validEnv());
    expect(config.authority).toBe('https://127.0.0.1:7443/tenant-id/');
    expect(config.appOrigin).toBe('http://localhost:7071');
    expect(config.downstreamApis).toEqual([
      {
        name: 'todos',
        url: 'http://127.0.0.1:7072/api/todolist',
        readScopes: ['api://todo-api/ToDoList.Read'],
        writeScopes: ['api://todo-api/ToDoList.ReadWrite'],
        timeoutMs: 10_000,
      },
    ]);
    expect(config.tokenCache.tableName).toBe('tokencache');
    expect(config.tokenCache.retentionDays).toBe(90);
    expect(config.tokenCache.connection).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
    expect(config.tokenCache.keys).toHaveLength(1);
    expect(config.session).toMatchObject({
      idleMinutes: 120,
      absoluteHours: 24,
      recheckSeconds: 5,
    });
  });

  it('takes SESSION_RECHECK_SECONDS from 0 (read on every request) to 300', () => {
    expect(loadConfig(validEnv({ SESSION_RECHECK_SECONDS: '0' })).session.recheckSeconds).toBe(0);
    expect(loadConfig(validEnv({ SESSION_RECHECK_SECONDS: '300' })).session.recheckSeconds).toBe(
      300,
    );
    for (const value of ['301', '-1', '2.5', 'soon']) {
      expect(problemsOf(validEnv({ SESSION_RECHECK_SECONDS: value }))).toEqual([
        `SESSION_RECHECK_SECONDS must be a whole number from 0 to 300, got "${value}"`,
      ]);
    }
  });

  it('builds the ciamlogin.com authority from TENANT_SUBDOMAIN', () => {
    const config = loadConfig(validEnv({ AUTHORITY: undefined, TENANT_SUBDOMAIN: 'Contoso' }));
    expect(config.authority).toBe('https://contoso.ciamlogin.com/');
  });

  it('refuses a root ciamlogin.com AUTHORITY named by tenant id, which MSAL rewrites wrongly, and says what to use', () => {
    const tenantId = '0b5c7a7e-3d41-4f6e-9a2c-5d8e1f0a7b3c';
    const [problem] = problemsOf(validEnv({ AUTHORITY: `https://${tenantId}.ciamlogin.com/` }));
    expect(problem).toMatch(/^AUTHORITY /);
    expect(problem).toContain(`${tenantId}.onmicrosoft.com`);
    expect(problem).toContain(`https://${tenantId}.ciamlogin.com/${tenantId}/`);
    expect(problem).toContain('TENANT_SUBDOMAIN');
    // The tenant id as the path, and a subdomain host, are what MSAL takes as they are.
    for (const authority of [
      `https://${tenantId}.ciamlogin.com/${tenantId}`,
      'https://contoso.ciamlogin.com/',
    ]) {
      expect(loadConfig(validEnv({ AUTHORITY: authority })).authority).toMatch(/ciamlogin\.com\//);
    }
  });

  it('lets AUTHORITY win over TENANT_SUBDOMAIN', () => {
    const config = loadConfig(validEnv({ TENANT_SUBDOMAIN: 'contoso' }));
    expect(config.authority).toBe('https://127.0.0.1:7443/tenant-id/');
  });

  it('uses an identity-based table connection when only the service URI is set', () => {
    const config = loadConfig(
      validEnv({
        TOKEN_CACHE_STORAGE: undefined,
        TOKEN_CACHE_STORAGE__tableServiceUri: 'https://acct.table.core.windows.net',
        TOKEN_CACHE_STORAGE__clientId: 'mi-client-id',
      }),
    );
    expect(config.tokenCache.connection).toEqual({
      kind: 'identity',
      tableServiceUri: 'https://acct.table.core.windows.net/',
      clientId: 'mi-client-id',
    });
  });

  it('accepts several keys and keeps their order (first encrypts)', () => {
    const [first, second] = [key(), key()];
    const config = loadConfig(validEnv({ SESSION_KEYS: `${first}, ${second}` }));
    expect(config.session.keys.map((k) => k.toString('base64'))).toEqual([first, second]);
  });

  it('reports every missing setting at once', () => {
    const problems = problemsOf({});
    expect(problems).toEqual([
      'TENANT_SUBDOMAIN or AUTHORITY is missing',
      'CLIENT_ID is missing',
      'CLIENT_SECRET or CLIENT_CERTIFICATE is missing: set exactly one',
      'REDIRECT_URI is missing',
      'POST_LOGOUT_REDIRECT_URI is missing',
      'DOWNSTREAM_API_TODOS_URL (or TODOLIST_ENDPOINT) is missing',
      'DOWNSTREAM_API_TODOS_READ_SCOPES (or TODOLIST_READ) is missing',
      'DOWNSTREAM_API_TODOS_WRITE_SCOPES (or TODOLIST_READWRITE) is missing',
      'TOKEN_CACHE_STORAGE or TOKEN_CACHE_STORAGE__tableServiceUri is missing',
      'TOKEN_CACHE_KEYS is missing',
      'SESSION_KEYS is missing',
    ]);
  });

  it('treats blank values as missing', () => {
    expect(problemsOf(validEnv({ CLIENT_ID: '   ' }))).toEqual(['CLIENT_ID is missing']);
  });

  it('reports every malformed setting at once, in one message', () => {
    const env = validEnv({
      AUTHORITY: 'http://login.example/tenant',
      REDIRECT_URI: 'not a url',
      POST_LOGOUT_REDIRECT_URI: 'http://app.example/',
      TODOLIST_ENDPOINT: 'https://api.example/api/todolist?x=1',
      TODOLIST_READ: 'api://a/Read api://a/Write',
      TODOLIST_TIMEOUT_MS: '10s',
      TOKEN_CACHE_TABLE: 'bad-name',
      TOKEN_CACHE_KEYS: `${key()},${randomBytes(16).toString('base64')}`,
      SESSION_KEYS: 'not-base64!',
      SESSION_IDLE_MINUTES: '0',
      TOKEN_CACHE_RETENTION_DAYS: '-5',
    });
    let message = '';
    try {
      loadConfig(env);
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of [
      'AUTHORITY',
      'REDIRECT_URI',
      'POST_LOGOUT_REDIRECT_URI',
      'TODOLIST_ENDPOINT',
      'TODOLIST_READ',
      'TODOLIST_TIMEOUT_MS',
      'TOKEN_CACHE_TABLE',
      'TOKEN_CACHE_KEYS key 2',
      'SESSION_KEYS key 1',
      'SESSION_IDLE_MINUTES',
      'TOKEN_CACHE_RETENTION_DAYS',
    ]) {
      expect(message).toContain(name);
    }
    expect(problemsOf(env)).toHaveLength(11);
  });

  it('never puts key material in the message', () => {
    const secretLooking = Buffer.alloc(31, 7).toString('base64');
    const problems = problemsOf(validEnv({ TOKEN_CACHE_KEYS: secretLooking }));
    expect(problems.join(' ')).not.toContain(secretLooking);
  });

  it('refuses an absolute session lifetime longer than a refresh token lives', () => {
    expect(problemsOf(validEnv({ SESSION_ABSOLUTE_HOURS: String(91 * 24) }))).toEqual([
      'SESSION_ABSOLUTE_HOURS must be a whole number from 1 to 2160, got "2184"',
    ]);
  });

  it('refuses an idle lifetime longer than the absolute one', () => {
    expect(
      problemsOf(validEnv({ SESSION_IDLE_MINUTES: '600', SESSION_ABSOLUTE_HOURS: '2' })),
    ).toEqual(['SESSION_IDLE_MINUTES must not be longer than SESSION_ABSOLUTE_HOURS']);
  });

  it('turns telemetry on with a connection string, authenticated as the managed identity', () => {
    const connectionString = 'InstrumentationKey=00000000-0000-4000-8000-000000000001';
    expect(loadConfig(validEnv()).telemetry).toBeUndefined();
    expect(
      loadConfig(validEnv({ APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString })).telemetry,
    ).toEqual({ connectionString });
    const withIdentity = (authentication: string) =>
      loadConfig(
        validEnv({
          APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
          APPLICATIONINSIGHTS_AUTHENTICATION_STRING: authentication,
        }),
      ).telemetry;
    expect(withIdentity('Authorization=AAD;ClientId=0c1d')).toEqual({
      connectionString,
      managedIdentity: { clientId: '0c1d' },
    });
    expect(withIdentity('authorization=aad')).toEqual({ connectionString, managedIdentity: {} });
    expect(
      problemsOf(
        validEnv({
          APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
          APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Key',
        }),
      ),
    ).toEqual([
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be "Authorization=AAD" or "Authorization=AAD;ClientId=<client id>"',
    ]);
  });

  it('exports the names of every setting it reads', () => {
    expect(SETTING_NAMES).toContain('TOKEN_CACHE_STORAGE__tableServiceUri');
    expect(new Set(SETTING_NAMES).size).toBe(SETTING_NAMES.length);
  });
});

describe('placeholders copied from local.settings.sample.json', () => {
  const sample = JSON.parse(
    readFileSync(new URL('../../local.settings.sample.json', import.meta.url), 'utf8'),
  ) as { Values: Record<string, string> };

  it('the sample as copied is refused, each placeholder by name, once, without its value', () => {
    const problems = problemsOf(sample.Values);
    const withPlaceholders = Object.entries(sample.Values)
      .filter(([, value]) => /<[^<>]*>/.test(value))
      .map(([name]) => name);
    expect(withPlaceholders.length).toBeGreaterThan(5);
    for (const name of withPlaceholders) {
      const about = problems.filter((problem) => problem.startsWith(`${name} `));
      expect(about).toEqual([
        `${name} still holds a <…> placeholder copied from local.settings.sample.json: replace it with your value`,
      ]);
    }
    // Nothing else is reported about them (no "missing" beside the placeholder message).
    expect(problems.filter((problem) => /missing/.test(problem))).toEqual([]);
    expect(problems.join('\n')).not.toMatch(/your External ID tenant|client secret of/);
  });

  it('a placeholder inside a value is refused too', () => {
    expect(
      problemsOf(validEnv({ TODOLIST_READ: 'api://<the API registration>/ToDoList.Read' })),
    ).toEqual([
      'TODOLIST_READ still holds a <…> placeholder copied from local.settings.sample.json: replace it with your value',
    ]);
  });
});

describe('Key Vault references App Service could not resolve', () => {
  // App Service passes the reference text on as the value ("If a reference isn't resolved properly,
  // the reference string is used instead": learn.microsoft.com/azure/app-service/app-service-key-vault-references).
  const reference = (name: string) =>
    `@Microsoft.KeyVault(SecretUri=https://kv-bff.vault.azure.net/secrets/${name}/)`;

  it('each is refused by name, once, with what to check, and nothing else is said about it', () => {
    const problems = problemsOf(
      validEnv({
        CLIENT_SECRET: undefined,
        CLIENT_CERTIFICATE: reference('client-certificate'),
        SESSION_KEYS: reference('session-keys'),
        TOKEN_CACHE_KEYS: ` ${reference('token-cache-keys').toLowerCase()}`,
      }),
    );
    expect(problems).toHaveLength(3);
    for (const name of ['CLIENT_CERTIFICATE', 'SESSION_KEYS', 'TOKEN_CACHE_KEYS']) {
      expect(problems.filter((problem) => problem.startsWith(`${name} `))).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${name} is a Key Vault reference that App Service could not resolve: .*Key Vault Secrets User role.*restart the app`,
          ),
        ),
      ]);
    }
    expect(problems.join('\n')).not.toMatch(/missing|PEM|base64/);
  });

  it('an unresolved secret reference is refused at start-up, not sent to the IdP', () => {
    expect(problemsOf(validEnv({ CLIENT_SECRET: reference('client-secret') }))).toEqual([
      expect.stringMatching(
        /^CLIENT_SECRET is a Key Vault reference that App Service could not resolve/,
      ),
    ]);
  });
});

describe('the client credential: CLIENT_SECRET or CLIENT_CERTIFICATE', () => {
  // A key and certificate made now, as Key Vault hands them out with the PEM content type.
  const made = generate([{ name: 'commonName', value: 'bff test' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
  const withCertificate = async (pem: (pair: { cert: string; private: string }) => string) =>
    validEnv({ CLIENT_SECRET: undefined, CLIENT_CERTIFICATE: pem(await made) });

  it('reads the key and its certificate in either order, with the SHA-256 thumbprint', async () => {
    const pair = await made;
    const expected = new X509Certificate(pair.cert).fingerprint256.replace(/:/g, '').toLowerCase();
    for (const env of [
      await withCertificate((p) => `${p.private}\n${p.cert}`),
      await withCertificate((p) => `${p.cert}\n${p.private}`),
      // An app setting with its line breaks written as \n.
      await withCertificate((p) => `${p.cert}${p.private}`.replace(/\r?\n/g, '\\n')),
    ]) {
      const { clientCredential } = loadConfig(env);
      expect(clientCredential).toMatchObject({ kind: 'certificate', thumbprintSha256: expected });
      expect(JSON.stringify(clientCredential)).not.toContain('web-app-secret');
    }
  });

  it('needs exactly one of the two, naming both', async () => {
    expect(problemsOf(validEnv({ CLIENT_SECRET: undefined }))).toEqual([
      'CLIENT_SECRET or CLIENT_CERTIFICATE is missing: set exactly one',
    ]);
    const both = await withCertificate((p) => `${p.private}\n${p.cert}`);
    expect(problemsOf({ ...both, CLIENT_SECRET: 'web-app-secret' })).toEqual([
      'CLIENT_SECRET and CLIENT_CERTIFICATE are both set: set exactly one',
    ]);
  });

  it('refuses PKCS#12, an encrypted key, a key without its certificate, and says why without the key', async () => {
    const pair = await made;
    const other = await generate([{ name: 'commonName', value: 'other' }], {
      keyType: 'rsa',
      keySize: 2048,
    });
    const encrypted = createPrivateKey(pair.private).export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'x',
    });
    const cases: [string, RegExp][] = [
      [Buffer.from('not really a pfx but base64').toString('base64'), /PKCS#12/],
      [`${encrypted.toString()}\n${pair.cert}`, /encrypted private key/],
      [pair.private, /holds no certificate/],
      [`${pair.private}\n${other.cert}`, /no certificate of its private key/],
      [
        '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' + pair.cert,
        /cannot be read/,
      ],
    ];
    for (const [value, message] of cases) {
      const problems = problemsOf(
        validEnv({ CLIENT_SECRET: undefined, CLIENT_CERTIFICATE: value }),
      );
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^CLIENT_CERTIFICATE /);
      expect(problems[0]).toMatch(message);
      expect(problems[0]).not.toContain('MII');
    }
  });
});
