import { createHash } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import { loginUrl } from '../../src/lib/auth/login-url.ts';
import { safeReturnTo } from '../../src/lib/auth/return-to.ts';
import { createTableClient, TokenTable } from '../../src/lib/tokens/table-storage.ts';
import { TokenCacheStore } from '../../src/lib/tokens/token-cache-store.ts';
import { signInThroughApp } from '../support/app-session.ts';
import { testStack, testUser } from '../support/stack.ts';
import { UserAgent } from '../support/user-agent.ts';
import { hostileText, propertyParameters } from './support/arbitraries.ts';
import { JWT, rawRequest, type RawAnswer } from './support/http.ts';

// Security properties of the shared app that no other file pins down (SECURITY.md maps each
// threat to its test, here or elsewhere). cy and dee are this file's and hostile-input's users;
// nothing here signs either of them out.

const stack = testStack();
const origin = stack.appOrigin;
const cy = testUser('cy@contoso.example');
const dee = testUser('dee@contoso.example');
const SESSION = '__Host-bff-session';
const SIGN_IN_PREFIX = '__Host-bff-signin-';
// The associated data the session store seals its cookie with (src/lib/auth/session-store.ts).
const SESSION_COOKIE_AAD = 'session-cookie/v1';
const homeAccountId = (oid: string) => `${oid}.${stack.emulator.tenantId}`;
const keysOf = (setting: string) =>
  (stack.settings[setting] ?? '').split(',').map((key) => Buffer.from(key, 'base64'));
const sessionKeys = new KeyRing(keysOf('SESSION_KEYS'));
const table = TableClient.fromConnectionString(
  stack.settings.TOKEN_CACHE_STORAGE ?? '',
  stack.settings.TOKEN_CACHE_TABLE ?? '',
  { allowInsecureConnection: true },
);
const tokenStore = new TokenCacheStore(
  new TokenTable(
    createTableClient(
      { kind: 'connectionString', connectionString: stack.settings.TOKEN_CACHE_STORAGE ?? '' },
      stack.settings.TOKEN_CACHE_TABLE ?? '',
    ),
  ),
  new KeyRing(keysOf('TOKEN_CACHE_KEYS')),
);

/** A signed-in user, calling as the app's page does (consent is tenant-wide: writes go through). */
class Caller {
  readonly agent = new UserAgent();
  readonly username: string;

  constructor(username: string) {
    this.username = username;
  }

  get cookieValue(): string {
    return this.agent.cookies(origin).get(SESSION) ?? '';
  }

  async signIn(): Promise<this> {
    await signInThroughApp(this.agent, origin, this.username);
    expect(this.cookieValue).not.toBe('');
    return this;
  }

  call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<RawAnswer> {
    return rawRequest(origin, {
      method,
      path,
      headers: {
        cookie: `${SESSION}=${this.cookieValue}`,
        'x-csrf': '1',
        origin,
        'sec-fetch-site': 'same-origin',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  }

  async me(): Promise<RawAnswer> {
    return rawRequest(origin, {
      path: '/auth/me',
      headers: { cookie: `${SESSION}=${this.cookieValue}` },
    });
  }
}

function openSessionCookie(value: string): { p: string; s: string } {
  return JSON.parse(
    sessionKeys.open(Buffer.from(value, 'base64url'), SESSION_COOKIE_AAD).toString('utf8'),
  ) as { p: string; s: string };
}

function sealSessionCookie(reference: { p: string; s: string }): string {
  return sessionKeys
    .seal(Buffer.from(JSON.stringify(reference)), SESSION_COOKIE_AAD)
    .toString('base64url');
}

let cyCaller: Caller;
let deeCaller: Caller;

beforeAll(async () => {
  [cyCaller, deeCaller] = await Promise.all([
    new Caller(cy.preferred_username).signIn(),
    new Caller(dee.preferred_username).signIn(),
  ]);
});

describe('CSRF: every state-changing route refuses a request a cross-site page could make', () => {
  // Each is a request some other site can make a browser send, or one without the app's header.
  const refusals: [string, Record<string, string>][] = [
    ['no X-CSRF header', { 'x-csrf': '' }],
    ['X-CSRF other than 1', { 'x-csrf': '0' }],
    ['a cross-site Sec-Fetch-Site', { 'sec-fetch-site': 'cross-site' }],
    ['a same-site (sibling subdomain) Sec-Fetch-Site', { 'sec-fetch-site': 'same-site' }],
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['a look-alike Origin', { origin: `${origin}.evil.example` }],
    ['an opaque Origin (sandboxed frame)', { origin: 'null' }],
    [
      'a cross-site HTML form',
      {
        'x-csrf': '',
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
        'content-type': 'application/x-www-form-urlencoded',
      },
    ],
  ];

  it.each(refusals)(
    '%s: 403 on POST, PUT, PATCH and DELETE, and nothing changes',
    async (_case, changes) => {
      const created = await deeCaller.call('POST', '/api/todos', { description: 'keep me' });
      expect(created.status, created.text).toBe(201);
      const id = String(created.json?.id);
      // dee's items: only this file touches them, and its tests run one at a time.
      const before = await deeCaller.call('GET', '/api/todos');
      const headers = (extra: Record<string, string>) =>
        Object.fromEntries(
          Object.entries({ ...extra, ...changes }).filter(([, value]) => value !== ''),
        );
      const attempts: [string, string, unknown][] = [
        ['POST', '/api/todos', { description: 'planted' }],
        ['PUT', `/api/todos/${id}`, { description: 'changed' }],
        ['PATCH', `/api/todos/${id}`, { description: 'changed' }],
        ['DELETE', `/api/todos/${id}`, undefined],
      ];
      for (const [method, path, body] of attempts) {
        const answer = await rawRequest(origin, {
          method,
          path,
          headers: headers({
            cookie: `${SESSION}=${deeCaller.cookieValue}`,
            'x-csrf': '1',
            origin,
            'sec-fetch-site': 'same-origin',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          }),
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(403);
      }
      expect((await deeCaller.call('GET', `/api/todos/${id}`)).json).toMatchObject({
        id,
        description: 'keep me',
      });
      expect((await deeCaller.call('GET', '/api/todos')).json).toEqual(before.json);
      await deeCaller.call('DELETE', `/api/todos/${id}`);
    },
  );

  it('sign-out: no GET route, and no simple cross-site request can carry the proof', async () => {
    const me = await deeCaller.me();
    const token = String((me.json?.signOut as { csrfToken?: string } | undefined)?.csrfToken);
    expect(token.length).toBeGreaterThan(20);
    const cookie = `${SESSION}=${deeCaller.cookieValue}`;
    const form = 'application/x-www-form-urlencoded';
    const attempts: [
      string,
      { method: string; path: string; headers: Record<string, string>; body?: string },
    ][] = [
      ['a GET (a link or an image)', { method: 'GET', path: '/auth/signout', headers: { cookie } }],
      [
        'the right form value from another site (Sec-Fetch-Site)',
        {
          method: 'POST',
          path: '/auth/signout',
          headers: { cookie, 'content-type': form, 'sec-fetch-site': 'cross-site' },
          body: `csrf=${token}`,
        },
      ],
      [
        'the right form value from another site (Origin)',
        {
          method: 'POST',
          path: '/auth/signout',
          headers: { cookie, 'content-type': form, origin: 'https://evil.example' },
          body: `csrf=${token}`,
        },
      ],
      [
        'the right value in a text/plain form',
        {
          method: 'POST',
          path: '/auth/signout',
          headers: { cookie, 'content-type': 'text/plain' },
          body: `csrf=${token}`,
        },
      ],
      [
        'the right value in a multipart form',
        {
          method: 'POST',
          path: '/auth/signout',
          headers: { cookie, 'content-type': 'multipart/form-data; boundary=x' },
          body: `--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n${token}\r\n--x--\r\n`,
        },
      ],
      [
        'the right value in the query string',
        {
          method: 'POST',
          path: `/auth/signout?csrf=${token}`,
          headers: { cookie, 'content-type': form },
        },
      ],
      [
        'another session’s value',
        {
          method: 'POST',
          path: '/auth/signout',
          headers: { cookie, 'content-type': form },
          body: `csrf=${String(((await cyCaller.me()).json?.signOut as { csrfToken?: string }).csrfToken)}`,
        },
      ],
    ];
    for (const [what, request] of attempts) {
      const answer = await rawRequest(origin, request);
      expect(answer.status, what).toBe(request.method === 'GET' ? 404 : 403);
    }
    expect((await deeCaller.me()).status).toBe(200);
  });
});

describe('open redirects', () => {
  it('safeReturnTo: any input ends as a path of this origin (property)', () => {
    const bases = ['https://app.example', 'http://localhost:7071'];
    const candidates = fc.oneof(
      hostileText,
      fc.webUrl(),
      fc
        .tuple(
          fc.constantFrom('/', '//', '/\\', '\\', '/%2F', '/%5C', '%2F', ' /', '\t/', '/.', '/..'),
          hostileText,
        )
        .map(([prefix, rest]) => `${prefix}${rest}`),
    );
    fc.assert(
      fc.property(candidates, (raw) => {
        const safe = safeReturnTo(raw);
        const what = `safeReturnTo(${JSON.stringify(raw)}) is ${JSON.stringify(safe)}`;
        expect(safe.startsWith('/'), what).toBe(true);
        // As a Location, `//host` or `/\host` would send the browser to that host.
        expect(safe.startsWith('//') || safe.startsWith('/\\'), what).toBe(false);
        expect(safe, what).not.toMatch(/\p{Cc}/u);
        for (const base of bases) expect(new URL(safe, base).origin, what).toBe(base);
        // The login URL carries it as a parameter and points at this app only.
        const login = new URL(loginUrl(raw), bases[0]);
        expect(login.origin).toBe(bases[0]);
        expect(login.pathname).toBe('/auth/signin');
        expect(login.searchParams.get('returnTo')).toBe(safe);
      }),
      {
        ...propertyParameters<[string]>(3000),
        // Dot segments that URL normalization folds into a leading `//` (found by seeds 1 and 3).
        examples: [
          ['/.//evil.example'],
          ['/a/..//evil.example'],
          ['/%2e//evil.example'],
          ['/x/%2E%2E//evil.example/p?q'],
        ],
      },
    );
  });

  // Through a real sign-in: where the browser lands after the IdP sends it back.
  it.each([
    '/%5Cevil.example',
    '/%5C%5Cevil.example',
    '/%09/evil.example',
    '/\t/evil.example',
    '\\\\evil.example',
    '%2F%2Fevil.example',
    '/.//evil.example',
    '/..//evil.example',
    '/%2e%2e//evil.example',
    '/\u3002/evil.example',
    ' //evil.example',
    'https:evil.example',
    'http://localhost@evil.example',
    `${origin}@evil.example/`,
    '///evil.example',
  ])('returnTo %j lands on this origin', async (returnTo) => {
    const agent = new UserAgent();
    const landed = await signInThroughApp(agent, origin, cy.preferred_username, returnTo);
    expect(new URL(landed).origin).toBe(origin);
  });

  it('the sign-in state cookie fits in a browser cookie (4096 bytes) for every returnTo it takes', async () => {
    // A browser drops a larger cookie, and the sign-in then fails as "not started in this browser".
    for (const returnTo of [
      `/${'é'.repeat(2000)}`,
      `/?q=${'💩'.repeat(1000)}`,
      `/${'a'.repeat(2040)}`,
    ]) {
      const answer = await rawRequest(origin, {
        path: `/auth/signin?returnTo=${encodeURIComponent(returnTo)}`,
      });
      expect(answer.status).toBe(302);
      const cookie = (answer.headers['set-cookie'] ?? []).find((line) =>
        line.startsWith(SIGN_IN_PREFIX),
      );
      const pair = cookie?.split(';')[0] ?? '';
      expect(pair.length, `returnTo of ${returnTo.length} characters`).toBeLessThanOrEqual(4096);
    }
  });
});

describe('sessions', () => {
  it('signing in again replaces the session cookie and ends the one the browser brought', async () => {
    const caller = await new Caller(cy.preferred_username).signIn();
    const before = caller.cookieValue;
    await signInThroughApp(caller.agent, origin, cy.preferred_username);
    expect(caller.cookieValue).not.toBe(before);
    expect((await caller.me()).status).toBe(200);
    const old = await rawRequest(origin, {
      path: '/auth/me',
      headers: { cookie: `${SESSION}=${before}` },
    });
    expect(old.status).toBe(401);
  });

  it("a session id is bound to its user's partition: re-pointed at another user it opens nothing", async () => {
    const cyRef = openSessionCookie(cyCaller.cookieValue);
    const deeRef = openSessionCookie(deeCaller.cookieValue);
    expect(cyRef.p).toBe(homeAccountId(cy.oid));
    // Even with the session key (which an attacker does not have), mixing users' halves fails.
    for (const forged of [
      sealSessionCookie({ p: deeRef.p, s: cyRef.s }),
      sealSessionCookie({ p: cyRef.p, s: deeRef.s }),
    ]) {
      const me = await rawRequest(origin, {
        path: '/auth/me',
        headers: { cookie: `${SESSION}=${forged}` },
      });
      expect(me.status).toBe(401);
      const todos = await rawRequest(origin, {
        path: '/api/todos',
        headers: { cookie: `${SESSION}=${forged}`, 'x-csrf': '1' },
      });
      expect(todos.status).toBe(401);
    }
  });

  it("concurrent requests of two users never get each other's tokens or items", async () => {
    const mine = await Promise.all(
      [cyCaller, deeCaller].map(async (caller) => {
        const created = await caller.call('POST', '/api/todos', {
          description: `of ${caller.username}`,
        });
        expect(created.status).toBe(201);
        return String(created.json?.id);
      }),
    );
    const owners = [cy.oid, dee.oid];
    const calls = Array.from({ length: 40 }, (_, index) => index % 2);
    const answers = await Promise.all(
      calls.map(async (who) => ({
        who,
        list: await [cyCaller, deeCaller][who]!.call('GET', '/api/todos'),
        other: await [cyCaller, deeCaller][who]!.call('GET', `/api/todos/${mine[1 - who]}`),
      })),
    );
    for (const { who, list, other } of answers) {
      expect(list.status).toBe(200);
      const items = list.json as unknown as { owner: string; description: string }[];
      expect(items.length).toBeGreaterThan(0);
      for (const item of items) expect(item.owner).toBe(owners[who]);
      expect(other.status).toBe(404);
    }
  });
});

describe('what Table Storage holds', () => {
  it('no session id, cookie, token or code in any raw row of the user partition', async () => {
    const caller = await new Caller(cy.preferred_username).signIn();
    const { s: sessionId } = openSessionCookie(caller.cookieValue);
    const cache = JSON.parse(
      (await tokenStore.read(homeAccountId(cy.oid)))?.serialized ?? '{}',
    ) as Record<string, Record<string, { secret?: string }> | undefined>;
    const tokens = ['AccessToken', 'RefreshToken', 'IdToken'].flatMap((section) =>
      Object.values(cache[section] ?? {}).flatMap((entry) => entry.secret ?? []),
    );
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    const forbidden = new Map<string, string>([
      [caller.cookieValue, 'the session cookie'],
      [sessionId, 'the session id'],
      [Buffer.from(sessionId, 'base64url').toString('hex'), 'the session id (hex)'],
      [Buffer.from(sessionId, 'base64url').toString('base64'), 'the session id (base64)'],
    ]);
    // Any 16-character window of a token would be a leak of part of it. A JWT's header and
    // claims are public (the session row keeps the user's login_hint claim, whose base64url can
    // coincide with theirs): its signature is what makes it a credential.
    for (const whole of tokens) {
      const token = whole.split('.').length === 3 ? (whole.split('.')[2] ?? '') : whole;
      for (let at = 0; at + 16 <= token.length; at += 16)
        forbidden.set(token.slice(at, at + 16), 'a token');
    }
    let rows = 0;
    for await (const row of table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `PartitionKey eq '${homeAccountId(cy.oid)}'` },
    })) {
      rows += 1;
      const text = Object.entries(row)
        .map(([name, value]) =>
          value instanceof Uint8Array
            ? `${name}=${Buffer.from(value).toString('latin1')}|${Buffer.from(value).toString('base64')}`
            : `${name}=${JSON.stringify(value)}`,
        )
        .join('\n');
      expect(text, `row ${row.rowKey}`).not.toMatch(JWT);
      for (const [value, what] of forbidden)
        expect(text.includes(value), `${what} in row ${row.rowKey}`).toBe(false);
      if (row.rowKey?.startsWith('session.')) {
        // The row is found by a digest of the id, never by the id itself.
        expect(row.rowKey).toMatch(/^session\.[0-9a-f]{64}$/);
      }
    }
    expect(rows).toBeGreaterThanOrEqual(2);
    expect(
      await table.getEntity(
        homeAccountId(cy.oid),
        `session.${createHash('sha256').update(sessionId).digest('hex')}`,
      ),
    ).toBeDefined();
  });
});

describe('our own failures', () => {
  it('a JSON body nested deeper than the stack allows: 4xx, not a 500', async () => {
    // 16,000 bytes: under the 16 KiB limit; JSON.parse takes it, JSON.stringify overflows the stack.
    const deep = `${'['.repeat(8000)}${']'.repeat(8000)}`;
    const created = await cyCaller.call('POST', '/api/todos', { description: 'target' });
    for (const [method, path] of [
      ['POST', '/api/todos'],
      ['PUT', `/api/todos/${String(created.json?.id)}`],
      ['PATCH', `/api/todos/${String(created.json?.id)}`],
    ] as const) {
      const answer = await cyCaller.call(method, path, deep);
      expect(answer.status, `${method}: ${answer.text}`).toBeGreaterThanOrEqual(400);
      expect(answer.status, `${method}: ${answer.text}`).toBeLessThan(500);
    }
  });
});
