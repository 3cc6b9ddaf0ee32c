import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import { signInThroughApp } from '../support/app-session.ts';
import { testStack, testUser } from '../support/stack.ts';
import { UserAgent } from '../support/user-agent.ts';
import {
  CONTENT_TYPES,
  headerValue,
  hostileText,
  METHODS,
  pathFrom,
  percentEncode,
  propertyParameters,
  queryString,
  requestBody,
  ROUTES,
  targetPiece,
  withinHeaderLimit,
} from './support/arbitraries.ts';
import {
  cookieRuleViolations,
  headerText,
  leaksIn,
  rawRequest,
  settingSecrets,
  type RawAnswer,
} from './support/http.ts';
import { statusTally } from './support/status-tally.ts';

// Random hostile requests against every route of the shared app (the one the global setup runs):
// whatever comes in, the app answers with its own 4xx (or a page), never a 500, never a stack,
// token, code or key, and every cookie it sets follows the __Host- rules. Log lines are checked
// in private-stack.test.ts, which runs an app process of its own.

const stack = testStack();
const origin = stack.appOrigin;
// Users of this file alone (see TEST_USERS).
const cy = testUser('cy@contoso.example');
const dee = testUser('dee@contoso.example');
const SESSION = '__Host-bff-session';
// Sign-in cookies are named per sign-in: `__Host-bff-signin-<tag of the state>`.
const SIGN_IN_PREFIX = '__Host-bff-signin-';
const secrets = settingSecrets(stack.settings);
const homeAccountId = (oid: string) => `${oid}.${stack.emulator.tenantId}`;

interface Signed {
  readonly agent: UserAgent;
  readonly cookie: string;
}
let cyAgent: Signed;
let deeAgent: Signed;
/** Sign-in cookies the app issued, with the state each is bound to. */
const signIns: { name: string; cookie: string; state: string }[] = [];
/** Session cookies that are well-formed but name no live session. */
const deadSessionCookies: string[] = [];

/** Signs the user in; consent is tenant-wide, so every API method gets through. */
async function signIn(username: string): Promise<Signed> {
  const agent = new UserAgent();
  await signInThroughApp(agent, origin, username);
  const cookie = agent.cookies(origin).get(SESSION);
  expect(cookie, `no session for ${username}`).toBeDefined();
  return { agent, cookie: cookie ?? '' };
}

async function startSignIn(): Promise<{ name: string; cookie: string; state: string }> {
  const agent = new UserAgent();
  const response = await agent.fetch(`${origin}/auth/signin?returnTo=/`);
  const state = new URL(response.headers.get('location') ?? '').searchParams.get('state') ?? '';
  const [name = '', cookie = ''] =
    [...agent.cookies(origin)].find(([key]) => key.startsWith(SIGN_IN_PREFIX)) ?? [];
  return { name, cookie, state };
}

beforeAll(async () => {
  [cyAgent, deeAgent] = await Promise.all([
    signIn(cy.preferred_username),
    signIn(dee.preferred_username),
  ]);
  for (let i = 0; i < 3; i += 1) signIns.push(await startSignIn());
  const sessionKeys = new KeyRing(
    (stack.settings.SESSION_KEYS ?? '').split(',').map((key) => Buffer.from(key, 'base64')),
  );
  const otherDeployment = new KeyRing([randomBytes(32)]);
  const seal = (ring: KeyRing, reference: unknown) =>
    ring.seal(Buffer.from(JSON.stringify(reference)), 'session-cookie/v1').toString('base64url');
  deadSessionCookies.push(
    // Sealed by another deployment's key.
    seal(otherDeployment, { p: homeAccountId(cy.oid), s: randomBytes(32).toString('base64url') }),
    // Sealed with this app's key, naming a session that does not exist.
    seal(sessionKeys, { p: homeAccountId(cy.oid), s: randomBytes(32).toString('base64url') }),
    // Sealed with this app's key, naming a partition no account can have.
    seal(sessionKeys, { p: "../x' or 'a' eq 'a", s: 'x' }),
    seal(sessionKeys, { p: 1, s: null }),
    // Sealed with this app's key, but not JSON.
    sessionKeys.seal(Buffer.from('{"p":'), 'session-cookie/v1').toString('base64url'),
    // The sign-in cookie's sealed value where the session cookie belongs (other associated data).
    signIns[0]?.cookie ?? '',
  );
});

/** A Cookie header made of hostile pairs, dead or foreign session cookies and real sign-in cookies. */
function cookieHeader(extra: fc.Arbitrary<[string, string]>[] = []): fc.Arbitrary<string> {
  const value = fc.oneof(
    headerValue.map((text) => text.replace(/;/g, '')),
    fc
      .uint8Array({ minLength: 1, maxLength: 200 })
      .map((bytes) => Buffer.from(bytes).toString('base64url')),
    fc.constantFrom(...deadSessionCookies),
    fc.constantFrom(...signIns.map((signIn) => signIn.cookie)),
  );
  const pair = fc.oneof(
    fc.tuple(fc.constantFrom(SESSION, ...signIns.map((signIn) => signIn.name)), value),
    fc.tuple(
      headerValue.map((name) => name.replace(/[;=]/g, '')),
      value,
    ),
    ...extra,
  );
  return fc
    .array(pair, { minLength: 1, maxLength: 4 })
    .map((pairs) => pairs.map(([name, text]) => `${name}=${text}`).join('; '));
}

/** Headers a hostile client may send, each present or not. */
function hostileHeaders(cookie: fc.Arbitrary<string>) {
  return fc
    .record(
      {
        cookie,
        'x-csrf': fc.oneof(fc.constant('1'), headerValue),
        origin: fc.oneof(
          fc.constantFrom(origin, 'null', 'http://evil.example', `${origin}.evil.example`),
          headerValue,
        ),
        'sec-fetch-site': fc.oneof(
          fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none'),
          headerValue,
        ),
        'content-type': fc.oneof(fc.constantFrom(...CONTENT_TYPES), headerValue),
        authorization: fc.oneof(
          fc.constant('Bearer eyJhbGciOiJub25lIn0.eyJvaWQiOiJ4In0.'),
          headerValue.map((text) => `Bearer ${text}`),
        ),
        'if-none-match': headerValue,
        accept: headerValue,
        'x-forwarded-host': fc.constantFrom('evil.example', 'localhost'),
        'x-original-url': targetPiece,
        'x-fuzz': headerValue,
      },
      { requiredKeys: [] },
    )
    .map(withinHeaderLimit);
}

interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Buffer | undefined;
  readonly chunked: boolean;
}

const sentRequest = (paths: fc.Arbitrary<string>, headers: fc.Arbitrary<Record<string, string>>) =>
  fc.record({
    method: fc.constantFrom(...METHODS),
    path: fc.tuple(paths, queryString).map(([path, query]) => `${path}${query}`),
    headers,
    body: requestBody,
    chunked: fc.boolean(),
  });

function send(request: Sent): Promise<RawAnswer> {
  return rawRequest(origin, {
    method: request.method,
    path: request.path,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body, chunked: request.chunked }),
  });
}

/**
 * What is wrong with an answer, whatever the request was. `mustNotEcho` are values the answer
 * must not contain (the caller's own cookie, an authorization code it sent).
 */
function problemsWith(answer: RawAnswer, mustNotEcho: readonly string[] = []): string[] {
  const problems: string[] = [];
  if (answer.status >= 500) problems.push(`status ${answer.status}`);
  const text = `${headerText(answer.headers)}\n${answer.text}`;
  problems.push(...leaksIn(text, secrets));
  for (const value of mustNotEcho) {
    if (value.length >= 12 && text.includes(value)) problems.push(`echoes ${value.slice(0, 12)}…`);
  }
  problems.push(...cookieRuleViolations(answer.headers));
  if (answer.headers['content-type'] !== undefined) {
    if (answer.headers['x-content-type-options'] !== 'nosniff') problems.push('no nosniff');
    if (answer.headers['cache-control'] === undefined) problems.push('no Cache-Control');
  }
  const location = answer.headers.location;
  if (location !== undefined) {
    const relative = /^\/(?![/\\])/.test(location);
    const toIdp = location.startsWith(`${stack.emulator.origin}/`);
    if (!relative && !toIdp) problems.push(`redirects to ${location}`);
  }
  if (/text\/html/.test(answer.headers['content-type'] ?? '')) {
    for (const [, href] of answer.text.matchAll(/(?:href|src|action)="([^"]*)"/g)) {
      if (!/^\/(?![/\\])/.test(href ?? '')) problems.push(`links to ${href}`);
    }
  }
  return problems;
}

const tally = statusTally('hostile input');

function expectClean(
  answer: RawAnswer,
  request: unknown,
  mustNotEcho: readonly string[] = [],
): void {
  const problems = problemsWith(answer, mustNotEcho);
  expect(
    problems,
    `${answer.status} for ${JSON.stringify(request).slice(0, 600)}\n${answer.text.slice(0, 300)}`,
  ).toEqual([]);
}

async function expectSignedIn(signed: Signed): Promise<void> {
  const me = await rawRequest(origin, {
    path: '/auth/me',
    headers: { cookie: `${SESSION}=${signed.cookie}` },
  });
  expect(me.status, me.text).toBe(200);
}

describe('hostile input against every route of the shared app', () => {
  it('anonymous: random methods, paths, queries, headers, cookies and bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        sentRequest(pathFrom(ROUTES), hostileHeaders(cookieHeader())),
        async (request) => {
          const answer = await send(request);
          tally('anonymous', answer.status);
          expectClean(answer, request);
        },
      ),
      propertyParameters(500),
    );
    expect((await rawRequest(origin, { path: '/health' })).status).toBe(200);
  });

  it("signed in: random calls with a live session never fail, leak or cross to another user's items", async () => {
    const own = `${SESSION}=${cyAgent.cookie}`;
    // A few items of cy's own, so that item calls reach real items as well as missing ones.
    const ids: string[] = [];
    for (const description of ['one', 'two', 'three']) {
      const created = await rawRequest(origin, {
        method: 'POST',
        path: '/api/todos',
        headers: { cookie: own, 'x-csrf': '1', 'content-type': 'application/json' },
        body: JSON.stringify({ description }),
      });
      expect(created.status, created.text).toBe(201);
      ids.push(String(created.json?.id));
    }
    const paths = fc.oneof(
      pathFrom(ROUTES.filter((route) => route !== '/auth/signout')),
      fc.constantFrom(...ids).map((id) => `/api/todos/${id}`),
    );
    const headers = hostileHeaders(
      fc.oneof(
        { weight: 4, arbitrary: fc.constant(own) },
        { weight: 1, arbitrary: cookieHeader([fc.constant([SESSION, cyAgent.cookie])]) },
      ),
    ).map((chosen) => ({ cookie: own, ...chosen }));
    // Mostly a well-formed call from the page, so that the request gets past the CSRF check.
    const pageLike = fc.record({
      'x-csrf': fc.constant('1'),
      origin: fc.constant(origin),
      'sec-fetch-site': fc.constant('same-origin'),
      'content-type': fc.constantFrom(...CONTENT_TYPES.slice(0, 3)),
    });
    const calls = fc.oneof(
      sentRequest(
        paths,
        fc.tuple(headers, pageLike).map(([random, page]) => ({ ...random, ...page })),
      ),
      sentRequest(paths, headers),
    );
    await fc.assert(
      fc.asyncProperty(calls, async (request) => {
        const answer = await send(request);
        tally('signed in', answer.status);
        expectClean(answer, request, [cyAgent.cookie]);
        if (answer.status === 200 && request.method === 'GET' && Array.isArray(answer.json)) {
          for (const item of answer.json as { owner?: unknown }[]) expect(item.owner).toBe(cy.oid);
        }
        if (answer.status === 200 && answer.json !== undefined && 'owner' in answer.json) {
          expect(answer.json.owner).toBe(cy.oid);
        }
      }),
      propertyParameters(500),
    );
    await expectSignedIn(cyAgent);
  });

  it('sign-out without CSRF proof is refused whatever else the request carries', async () => {
    const own = `${SESSION}=${deeAgent.cookie}`;
    const headers = hostileHeaders(fc.constant(own))
      .map((chosen): Record<string, string> => ({ ...chosen, cookie: own }))
      .filter((chosen) => chosen['x-csrf'] !== '1');
    // A form field other than the session's own CSRF value (which this test never learns).
    const body = fc.oneof(
      requestBody,
      hostileText.map((text) => `csrf=${percentEncode(text)}`),
      fc
        .uint8Array({ minLength: 32, maxLength: 32 })
        .map((bytes) => `csrf=${Buffer.from(bytes).toString('base64url')}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({ headers, body, chunked: fc.boolean(), query: queryString }),
        async ({ headers: sent, body: form, chunked, query }) => {
          const answer = await rawRequest(origin, {
            method: 'POST',
            path: `/auth/signout${query}`,
            headers: sent,
            ...(form === undefined ? {} : { body: form, chunked }),
          });
          tally('sign-out', answer.status);
          expectClean(answer, { sent, form, query }, [deeAgent.cookie]);
          // 403 from the app; or the HTTP server's own bare 400/431 for a request line or
          // headers it cannot parse (Latin-1 bytes in the target, oversized headers), which
          // never reach the app at all.
          const refusedByServer = [400, 431].includes(answer.status) && answer.body.length === 0;
          expect(refusedByServer || answer.status === 403, `${answer.status} ${answer.text}`).toBe(
            true,
          );
        },
      ),
      propertyParameters(200),
    );
    await expectSignedIn(deeAgent);
  });

  it('a request target starting with // is a path, as the Functions host reads it: never a 500', async () => {
    // Kestrel takes `//x/y` as the path `//x/y`; the local host must not read `x` as a host.
    for (const path of ['//[/api/todos', '//evil.example:99999/x', '//%F0%90%B6%A5/x', '//%00/x']) {
      const answer = await rawRequest(origin, { path, headers: { 'x-csrf': '1' } });
      expect(answer.status, path).toBeGreaterThanOrEqual(400);
      expect(answer.status, path).toBeLessThan(500);
    }
  });

  it('the redirect callback with the real sign-in state and a hostile code, state or error', async () => {
    const callbacks = fc.record({
      signIn: fc.constantFrom(...signIns),
      code: fc.option(hostileText, { nil: undefined }),
      state: fc.option(hostileText, { nil: undefined }),
      useRealState: fc.boolean(),
      error: fc.option(hostileText, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(callbacks, async ({ signIn, code, state, useRealState, error }) => {
        const query = new URLSearchParams();
        if (code !== undefined) query.set('code', code);
        query.set('state', useRealState ? signIn.state : (state ?? ''));
        if (error !== undefined) query.set('error', error);
        const answer = await rawRequest(origin, {
          path: `/auth/redirect?${query.toString()}`,
          headers: { cookie: `${signIn.name}=${signIn.cookie}` },
        });
        tally('callback', answer.status);
        expectClean(answer, { code, state, useRealState, error }, code === undefined ? [] : [code]);
        // No hostile code redeems: no session is ever started.
        expect(
          answer.headers['set-cookie']?.some(
            (line) => line.startsWith(`${SESSION}=`) && !line.startsWith(`${SESSION}=;`),
          ) ?? false,
        ).toBe(false);
        expect([400, 503]).toContain(answer.status);
      }),
      propertyParameters(100),
    );
  });
});
