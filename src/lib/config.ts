import { parseClientCertificate, type ClientCredential } from './idp/client-credential';

/**
 * The app's settings, read from the environment once and validated as a whole, so a bad deployment
 * fails at start-up with one message that names every missing or malformed setting.
 *
 * This is the only module in `src/` that reads `process.env`.
 */

/** Every setting the app reads. The infra tests check the Bicep templates against this list. */
export const SETTING_NAMES = [
  'TENANT_SUBDOMAIN',
  'AUTHORITY',
  'CLIENT_ID',
  'CLIENT_SECRET',
  'CLIENT_CERTIFICATE',
  'REDIRECT_URI',
  'POST_LOGOUT_REDIRECT_URI',
  'TODOLIST_ENDPOINT',
  'TODOLIST_READ',
  'TODOLIST_READWRITE',
  'TODOLIST_TIMEOUT_MS',
  'DOWNSTREAM_APIS',
  'TOKEN_CACHE_STORAGE',
  'TOKEN_CACHE_STORAGE__tableServiceUri',
  'TOKEN_CACHE_STORAGE__clientId',
  'TOKEN_CACHE_TABLE',
  'TOKEN_CACHE_KEYS',
  'TOKEN_CACHE_RETENTION_DAYS',
  'SESSION_KEYS',
  'SESSION_IDLE_MINUTES',
  'SESSION_ABSOLUTE_HOURS',
  'SESSION_RECHECK_SECONDS',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
] as const;

export type SettingName = (typeof SETTING_NAMES)[number];

/** The settings of one API listed in `DOWNSTREAM_APIS`, `<NAME>` being its name as `apiSettingPrefix` spells it. */
export type DownstreamApiSettingName =
  `DOWNSTREAM_API_${string}_${'URL' | 'READ_SCOPES' | 'WRITE_SCOPES' | 'TIMEOUT_MS'}`;

type AnySettingName = SettingName | DownstreamApiSettingName;

/** `orders-v2` → `DOWNSTREAM_API_ORDERS_V2_`: settings names cannot hold `-`. */
function apiSettingPrefix(name: string): string {
  return `DOWNSTREAM_API_${name.toUpperCase().replaceAll('-', '_')}_`;
}
export type Environment = Readonly<Record<string, string | undefined>>;

/** Where the token table lives: a connection string, or a service URI reached with a managed identity. */
export type TableStorageConnection =
  | { readonly kind: 'connectionString'; readonly connectionString: string }
  | { readonly kind: 'identity'; readonly tableServiceUri: string; readonly clientId?: string };

/** Where the app's own spans go (Application Insights); absent, telemetry stays off. */
export interface TelemetrySettings {
  readonly connectionString: string;
  /**
   * Ingestion authenticated with Entra ID as the app's managed identity (`Authorization=AAD` in
   * APPLICATIONINSIGHTS_AUTHENTICATION_STRING), the user-assigned one when `clientId` is given.
   */
  readonly managedIdentity?: { readonly clientId?: string };
}

/** One API the proxy serves under `/api/<name>`; its calls go to `url` and nowhere else. */
export interface DownstreamApi {
  /** `[a-z][a-z0-9-]{0,31}`: the path segment after `/api/`. */
  readonly name: string;
  /** The base URL without a trailing slash. */
  readonly url: string;
  /** Full scopes of one resource (`api://<id>/<scope>`) for GET and HEAD. */
  readonly readScopes: readonly string[];
  /** Full scopes of that same resource for POST, PUT, PATCH and DELETE. */
  readonly writeScopes: readonly string[];
  readonly timeoutMs: number;
}

export interface AppConfig {
  /** The authority MSAL talks to, always ending in `/`. */
  readonly authority: string;
  readonly clientId: string;
  /** `CLIENT_SECRET` or `CLIENT_CERTIFICATE`: exactly one is set. */
  readonly clientCredential: ClientCredential;
  readonly redirectUri: string;
  readonly postLogoutRedirectUri: string;
  /** The origin the page is served from, taken from `REDIRECT_URI`: the only origin allowed to call the API routes. */
  readonly appOrigin: string;
  /**
   * The APIs in `DOWNSTREAM_APIS` order, at least one. The first one's scopes are asked for at
   * sign-in; `todos` keeps the ToDoList contract of `/api/todos`.
   */
  readonly downstreamApis: readonly DownstreamApi[];
  readonly tokenCache: {
    readonly connection: TableStorageConnection;
    readonly tableName: string;
    /** The first key encrypts; every key decrypts, so keys rotate without signing anyone out. */
    readonly keys: readonly Buffer[];
    readonly retentionDays: number;
  };
  readonly session: {
    readonly keys: readonly Buffer[];
    readonly idleMinutes: number;
    readonly absoluteHours: number;
    /**
     * How long this instance may serve a session and its access token from memory before it reads
     * the table again (0: read on every request). Bounds how late another instance's sign-out,
     * revocation or refresh is seen here.
     */
    readonly recheckSeconds: number;
  };
  /** Absent without APPLICATIONINSIGHTS_CONNECTION_STRING (locally, in tests). */
  readonly telemetry?: TelemetrySettings;
}

const DEFAULT_TOKEN_CACHE_TABLE = 'tokencache';

/** Thrown when settings are missing or malformed; `problems` has one line per bad setting. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
// The sample's placeholders look like `<your External ID tenant subdomain, e.g. contoso>`; no real
// value of any setting contains `<…>` (URLs would percent-encode it, keys are base64).
const PLACEHOLDER = /<[^<>]*>/;

// App Service hands the app the reference text itself when it cannot resolve a Key Vault reference
// ("If a reference isn't resolved properly, the reference string is used instead":
// https://learn.microsoft.com/azure/app-service/app-service-key-vault-references, Troubleshoot).
// Used as a value it would fail far from its cause: a secret refused at the first sign-in, a
// certificate "with no PEM block", keys "not base64".
const KEY_VAULT_REFERENCE = /^@Microsoft\.KeyVault\(/i;
const KEY_BYTES = 32;
// Entra refresh tokens live 90 days: a session or cache row kept longer could never be used again.
const REFRESH_TOKEN_LIFETIME_DAYS = 90;
// A sign-out elsewhere may go unseen on an instance this long: beyond a few minutes it would no
// longer read as a sign-out.
const MAX_RECHECK_SECONDS = 300;

/**
 * Collects problems instead of throwing at the first one, so one start-up reports them all.
 */
class SettingsReader {
  readonly problems: string[] = [];
  private readonly env: Environment;

  constructor(env: Environment) {
    this.env = env;
  }

  /**
   * Settings already reported as unusable (a placeholder of local.settings.sample.json, an
   * unresolved Key Vault reference), so nothing else is said about them.
   */
  readonly unusable = new Set<AnySettingName>();

  optional(name: AnySettingName): string | undefined {
    const value = this.env[name]?.trim();
    if (value === undefined || value === '') return undefined;
    if (KEY_VAULT_REFERENCE.test(value)) {
      if (!this.unusable.has(name)) {
        this.unusable.add(name);
        this.problems.push(
          `${name} is a Key Vault reference that App Service could not resolve: check its status under the app's Environment variables (the identity's Key Vault Secrets User role may still be propagating, or the secret or certificate does not exist), then restart the app (docs/deploy.md, Troubleshooting)`,
        );
      }
      return undefined;
    }
    if (PLACEHOLDER.test(value)) {
      if (!this.unusable.has(name)) {
        this.unusable.add(name);
        // The value is not quoted: it may be a secret that merely contains the brackets.
        this.problems.push(
          `${name} still holds a <…> placeholder copied from local.settings.sample.json: replace it with your value`,
        );
      }
      return undefined;
    }
    return value;
  }

  required(name: AnySettingName): string {
    const value = this.optional(name);
    if (value === undefined) {
      if (!this.unusable.has(name)) this.problems.push(`${name} is missing`);
      return '';
    }
    return value;
  }

  problem(name: AnySettingName, message: string): void {
    this.problems.push(`${name} ${message}`);
  }

  /**
   * An absolute URL. `https` is required except on loopback hosts, where the local development
   * stack serves plain `http`.
   */
  url(name: AnySettingName, value: string | undefined): string {
    if (value === undefined || value === '') return '';
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      this.problem(name, `must be an absolute URL, got "${value}"`);
      return '';
    }
    const secure = url.protocol === 'https:';
    const loopbackHttp = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
    let problem: string | undefined;
    if (!secure && !loopbackHttp) {
      problem = 'must use https (http is allowed only for localhost)';
    } else if (url.username !== '' || url.password !== '') {
      problem = 'must not contain credentials';
    } else if (url.hash !== '' || url.search !== '') {
      problem = 'must not contain a query or fragment';
    }
    if (problem === undefined) return url.href;
    this.problem(name, problem);
    return '';
  }

  integer(name: AnySettingName, fallback: number, min: number, max: number): number {
    const value = this.optional(name);
    if (value === undefined) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.problem(name, `must be a whole number from ${min} to ${max}, got "${value}"`);
      return fallback;
    }
    return parsed;
  }

  scope(name: AnySettingName): string {
    const value = this.required(name);
    if (value !== '' && /\s/.test(value)) {
      this.problem(name, 'must be one scope string without spaces');
    }
    return value;
  }

  /** Space-separated scopes; the value was already found (not missing). */
  scopeList(name: AnySettingName, value: string): string[] {
    const scopes = value.split(/\s+/).filter((scope) => scope !== '');
    if (scopes.some((scope) => /[\p{Cc}"]/u.test(scope))) {
      this.problem(name, 'must be space-separated scopes without control characters or quotes');
    }
    return scopes;
  }

  /** Comma-separated base64 keys of exactly 32 bytes each; the values never appear in messages. */
  keys(name: AnySettingName): Buffer[] {
    const value = this.required(name);
    if (value === '') return [];
    const parts = value.split(',').map((part) => part.trim());
    const keys: Buffer[] = [];
    parts.forEach((part, index) => {
      const key = Buffer.from(part, 'base64');
      if (key.length !== KEY_BYTES || key.toString('base64') !== part) {
        this.problem(name, `key ${index + 1} must be ${KEY_BYTES} bytes in standard base64`);
      } else {
        keys.push(key);
      }
    });
    return keys;
  }
}

/** The tenant id of `https://<tenant id>.ciamlogin.com/` (no path), else null. */
function guidCiamRoot(url: URL): string | null {
  const match =
    /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.ciamlogin\.com$/i.exec(
      url.hostname,
    );
  return match !== null && url.pathname === '/' ? (match[1] ?? null) : null;
}

function readAuthority(settings: SettingsReader): string {
  const authority = settings.optional('AUTHORITY');
  const subdomain = settings.optional('TENANT_SUBDOMAIN');
  if (authority !== undefined) {
    const url = settings.url('AUTHORITY', authority);
    if (url.startsWith('http:')) {
      settings.problem('AUTHORITY', 'must use https (MSAL refuses any other scheme)');
    }
    const guidRoot = url === '' ? null : guidCiamRoot(new URL(url));
    if (guidRoot !== null) {
      // msal-common's Authority.transformCIAMAuthority turns a root ciamlogin.com authority into
      // https://<first host label>.ciamlogin.com/<first host label>.onmicrosoft.com/: right for a
      // subdomain, no tenant at all for a tenant id.
      settings.problem(
        'AUTHORITY',
        `https://${guidRoot}.ciamlogin.com/ names the tenant by its id in the host, which MSAL rewrites to the non-existent tenant ${guidRoot}.onmicrosoft.com: use https://${guidRoot}.ciamlogin.com/${guidRoot}/ or set TENANT_SUBDOMAIN to the tenant's subdomain instead`,
      );
    }
    return url.endsWith('/') ? url : `${url}/`;
  }
  if (subdomain === undefined) {
    if (!settings.unusable.has('TENANT_SUBDOMAIN')) {
      settings.problems.push('TENANT_SUBDOMAIN or AUTHORITY is missing');
    }
    return '';
  }
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(subdomain)) {
    settings.problem(
      'TENANT_SUBDOMAIN',
      `must be a DNS label such as "contoso", got "${subdomain}"`,
    );
    return '';
  }
  return `https://${subdomain.toLowerCase()}.ciamlogin.com/`;
}

function readTableConnection(settings: SettingsReader): TableStorageConnection {
  const connectionString = settings.optional('TOKEN_CACHE_STORAGE');
  const tableServiceUri = settings.optional('TOKEN_CACHE_STORAGE__tableServiceUri');
  if (connectionString !== undefined) {
    return { kind: 'connectionString', connectionString };
  }
  if (tableServiceUri === undefined) {
    if (!settings.unusable.has('TOKEN_CACHE_STORAGE')) {
      settings.problems.push(
        'TOKEN_CACHE_STORAGE or TOKEN_CACHE_STORAGE__tableServiceUri is missing',
      );
    }
    return { kind: 'connectionString', connectionString: '' };
  }
  const clientId = settings.optional('TOKEN_CACHE_STORAGE__clientId');
  return {
    kind: 'identity',
    tableServiceUri: settings.url('TOKEN_CACHE_STORAGE__tableServiceUri', tableServiceUri),
    ...(clientId === undefined ? {} : { clientId }),
  };
}

function readTableName(settings: SettingsReader): string {
  const tableName = settings.optional('TOKEN_CACHE_TABLE') ?? DEFAULT_TOKEN_CACHE_TABLE;
  if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(tableName)) {
    settings.problem(
      'TOKEN_CACHE_TABLE',
      `must be 3 to 63 letters or digits starting with a letter, got "${tableName}"`,
    );
  }
  return tableName;
}

/**
 * The Functions host's own format (`Authorization=AAD;ClientId=<guid>`), so the host and the app
 * authenticate their telemetry the same way from one setting.
 */
function readTelemetry(settings: SettingsReader): TelemetrySettings | undefined {
  const connectionString = settings.optional('APPLICATIONINSIGHTS_CONNECTION_STRING');
  if (connectionString === undefined) return undefined;
  const authentication = settings.optional('APPLICATIONINSIGHTS_AUTHENTICATION_STRING');
  if (authentication === undefined) return { connectionString };
  const fields = new Map(
    authentication
      .split(';')
      .filter((part) => part.trim() !== '')
      .map((part) => {
        const separator = part.indexOf('=');
        return [part.slice(0, separator).trim().toLowerCase(), part.slice(separator + 1).trim()];
      }),
  );
  if (fields.get('authorization')?.toUpperCase() !== 'AAD') {
    settings.problem(
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
      'must be "Authorization=AAD" or "Authorization=AAD;ClientId=<client id>"',
    );
    return undefined;
  }
  const clientId = fields.get('clientid');
  return {
    connectionString,
    managedIdentity: clientId === undefined || clientId === '' ? {} : { clientId },
  };
}

const API_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const DEFAULT_API_TIMEOUT_MS = 10_000;

/** The resource a full scope belongs to (`api://id/Read` → `api://id`): one token serves one resource. */
function resourceOf(scope: string): string {
  const slash = scope.lastIndexOf('/');
  return slash === -1 ? '' : scope.slice(0, slash);
}

/**
 * `todos` may come from the tutorial's settings instead; `DOWNSTREAM_API_TODOS_*` wins where both
 * are set. Each returns the setting's value and the name to blame in a message.
 */
const TUTORIAL_SETTINGS = {
  URL: 'TODOLIST_ENDPOINT',
  READ_SCOPES: 'TODOLIST_READ',
  WRITE_SCOPES: 'TODOLIST_READWRITE',
  TIMEOUT_MS: 'TODOLIST_TIMEOUT_MS',
} as const satisfies Record<string, SettingName>;

function readDownstreamApi(settings: SettingsReader, name: string): DownstreamApi {
  const prefix = apiSettingPrefix(name);
  const pick = (field: keyof typeof TUTORIAL_SETTINGS): [AnySettingName, string | undefined] => {
    const own = `${prefix}${field}` as DownstreamApiSettingName;
    const value = settings.optional(own);
    if (value !== undefined || name !== 'todos') return [own, value];
    const tutorial = TUTORIAL_SETTINGS[field];
    return [tutorial, settings.optional(tutorial)];
  };
  const missing = (field: keyof typeof TUTORIAL_SETTINGS, setting: AnySettingName): void => {
    if (settings.unusable.has(setting)) return;
    const alternative = name === 'todos' ? ` (or ${TUTORIAL_SETTINGS[field]})` : '';
    settings.problems.push(`${prefix}${field}${alternative} is missing`);
  };

  const [urlSetting, urlValue] = pick('URL');
  if (urlValue === undefined) missing('URL', urlSetting);
  const url = settings.url(urlSetting, urlValue);

  const scopesOf = (field: 'READ_SCOPES' | 'WRITE_SCOPES'): string[] => {
    const [setting, value] = pick(field);
    if (value === undefined) {
      missing(field, setting);
      return [];
    }
    // The tutorial's settings hold one scope each; a space there is a mistake, not a list.
    if (setting === 'TODOLIST_READ' || setting === 'TODOLIST_READWRITE') {
      return [settings.scope(setting)];
    }
    return settings.scopeList(setting, value);
  };
  const readScopes = scopesOf('READ_SCOPES');
  const writeScopes = scopesOf('WRITE_SCOPES');
  // A scope already refused for holding spaces is not judged again here.
  const resources = new Set(
    [...readScopes, ...writeScopes].filter((scope) => !/\s/.test(scope)).map(resourceOf),
  );
  if (resources.size > 1) {
    settings.problems.push(
      `${prefix}READ_SCOPES and ${prefix}WRITE_SCOPES must all be scopes of one API (one token per API), got ${[...resources].map((resource) => `"${resource}"`).join(', ')}`,
    );
  }
  const [timeoutSetting] = pick('TIMEOUT_MS');
  const timeoutMs = settings.integer(timeoutSetting, DEFAULT_API_TIMEOUT_MS, 100, 120_000);
  return { name, url: url.replace(/\/+$/, ''), readScopes, writeScopes, timeoutMs };
}

/** `DOWNSTREAM_APIS` (unset: `todos`) and each listed API's settings. */
function readDownstreamApis(settings: SettingsReader): DownstreamApi[] {
  const list = settings.optional('DOWNSTREAM_APIS') ?? 'todos';
  const names = list.split(',').map((name) => name.trim());
  const valid: string[] = [];
  for (const name of names) {
    if (!API_NAME.test(name)) {
      settings.problem(
        'DOWNSTREAM_APIS',
        `must be comma-separated names of 1 to 32 lower-case letters, digits or "-" starting with a letter, got "${name}"`,
      );
    } else if (valid.includes(name)) {
      settings.problem('DOWNSTREAM_APIS', `names "${name}" twice`);
    } else {
      valid.push(name);
    }
  }
  return valid.map((name) => readDownstreamApi(settings, name));
}

/** Exactly one of `CLIENT_SECRET` and `CLIENT_CERTIFICATE`. */
function readClientCredential(settings: SettingsReader): ClientCredential {
  const secret = settings.optional('CLIENT_SECRET');
  const certificate = settings.optional('CLIENT_CERTIFICATE');
  if (secret !== undefined && certificate !== undefined) {
    settings.problems.push('CLIENT_SECRET and CLIENT_CERTIFICATE are both set: set exactly one');
  } else if (certificate !== undefined) {
    try {
      return parseClientCertificate(certificate);
    } catch (error) {
      settings.problem('CLIENT_CERTIFICATE', (error as Error).message);
    }
  } else if (secret !== undefined) {
    return { kind: 'secret', secret };
  } else if (
    !settings.unusable.has('CLIENT_SECRET') &&
    !settings.unusable.has('CLIENT_CERTIFICATE')
  ) {
    settings.problems.push('CLIENT_SECRET or CLIENT_CERTIFICATE is missing: set exactly one');
  }
  return { kind: 'secret', secret: '' };
}

/** Validates every setting and returns the config, or throws one `ConfigError` listing all problems. */
export function loadConfig(env: Environment): AppConfig {
  const settings = new SettingsReader(env);
  const authority = readAuthority(settings);
  const clientId = settings.required('CLIENT_ID');
  const clientCredential = readClientCredential(settings);
  const redirectUri = settings.url('REDIRECT_URI', settings.required('REDIRECT_URI'));
  const postLogoutRedirectUri = settings.url(
    'POST_LOGOUT_REDIRECT_URI',
    settings.required('POST_LOGOUT_REDIRECT_URI'),
  );
  const downstreamApis = readDownstreamApis(settings);
  const connection = readTableConnection(settings);
  const tableName = readTableName(settings);
  const tokenCacheKeys = settings.keys('TOKEN_CACHE_KEYS');
  const retentionDays = settings.integer(
    'TOKEN_CACHE_RETENTION_DAYS',
    REFRESH_TOKEN_LIFETIME_DAYS,
    1,
    3650,
  );
  const sessionKeys = settings.keys('SESSION_KEYS');
  const idleMinutes = settings.integer('SESSION_IDLE_MINUTES', 120, 1, 60 * 24 * 30);
  const absoluteHours = settings.integer(
    'SESSION_ABSOLUTE_HOURS',
    24,
    1,
    REFRESH_TOKEN_LIFETIME_DAYS * 24,
  );
  const recheckSeconds = settings.integer('SESSION_RECHECK_SECONDS', 5, 0, MAX_RECHECK_SECONDS);
  const telemetry = readTelemetry(settings);
  if (idleMinutes > absoluteHours * 60) {
    settings.problem('SESSION_IDLE_MINUTES', 'must not be longer than SESSION_ABSOLUTE_HOURS');
  }

  if (settings.problems.length > 0) {
    throw new ConfigError(settings.problems);
  }
  return {
    authority,
    clientId,
    clientCredential,
    redirectUri,
    postLogoutRedirectUri,
    appOrigin: new URL(redirectUri).origin,
    downstreamApis,
    tokenCache: { connection, tableName, keys: tokenCacheKeys, retentionDays },
    session: { keys: sessionKeys, idleMinutes, absoluteHours, recheckSeconds },
    ...(telemetry === undefined ? {} : { telemetry }),
  };
}

let current: AppConfig | undefined;

/** The process's config, read from `process.env` on first use and kept for the process's life. */
export function getConfig(): AppConfig {
  current ??= loadConfig(process.env);
  return current;
}
