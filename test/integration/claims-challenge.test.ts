import fc from 'fast-check';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notesApiRegistration } from '../../dev/dev-settings.mts';
import type { EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import type { NotesApi } from '../../dev/notes-api/notes-api.mts';
import type { TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { signInThroughApp } from '../support/app-session.ts';
import { startTwoApiStack, type TwoApiStack } from '../support/two-api-stack.ts';
import { UserAgent } from '../support/user-agent.ts';
import { propertyParameters } from '../security/support/arbitraries.ts';

// Claims challenges end to end (DESIGN.md "Downstream APIs", last rule): a sample API that needs
// a Conditional Access authentication context answers Microsoft's insufficient_claims challenge
// (https://learn.microsoft.com/entra/identity-platform/claims-challenge); the app retries silently
// with the claims, else answers 401 with a loginUrl carrying them; that sign-in passes them to the
// emulator, whose tokens then carry `acrs`. The stack is this file's own: the emulator, Azurite,
// the local host running the built app, the ToDoList API as `todos` and the notes API as `notes`.
const SESSION_COOKIE = '__Host-bff-session';
const SIGN_IN_PREFIX = '__Host-bff-signin-';
const NOTES_CLIENT_ID = notesApiRegistration().clientId;
const C1 = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}';

const stepUpUser = {
  oid: 'c1a1c1a1-0000-4000-a000-000000000001',
  name: 'Stella Stepup',
  preferred_username: 'stella@claims.example',
};
const refusedUser = {
  oid: 'c1a1c1a1-0000-4000-a000-000000000002',
  name: 'Rufus Refused',
  preferred_username: 'rufus@claims.example',
};
const todoUser = {
  oid: 'c1a1c1a1-0000-4000-a000-000000000003',
  name: 'Tod Todos',
  preferred_username: 'tod@claims.example',
};

const todoStepUpUser = {
  oid: 'c1a1c1a1-0000-4000-a000-000000000004',
  name: 'Tara Todos',
  preferred_username: 'tara@claims.example',
};

let twoApis: TwoApiStack;
let emulator: EntraEmulator;
let todos: TodoListApi;
let notes: NotesApi;
let origin: string;

beforeAll(async () => {
  twoApis = await startTwoApiStack({
    users: [stepUpUser, refusedUser, todoUser, todoStepUpUser],
  });
  ({ emulator, todos, notes, origin } = twoApis);
});

afterAll(async () => {
  await twoApis?.stop();
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: Record<string, unknown>;
}

/** A call from the page of `agent`'s session. */
async function call(agent: UserAgent, path: string): Promise<Answer> {
  const response = await agent.fetch(`${origin}${path}`, {
    headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', origin },
  });
  const text = await response.text();
  expect(text).not.toMatch(/eyJ[\w-]{20,}\.|Bearer |secret/);
  return {
    status: response.status,
    headers: response.headers,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** The claims request a loginUrl carries, decoded. */
function claimsOfLoginUrl(loginUrl: unknown): string | undefined {
  const url = new URL(String(loginUrl), origin);
  expect(url.pathname).toBe('/auth/signin');
  const claims = url.searchParams.get('claims');
  return claims === null ? undefined : Buffer.from(claims, 'base64url').toString('utf8');
}

/**
 * Follows `loginUrl` as the browser does: to the emulator, which shows its sign-in page for a
 * step-up even though the browser is signed in there; picks `oid` there; back through the app's
 * redirect URI to the page. Resolves with the app's final redirect target.
 */
async function signInWithStepUp(agent: UserAgent, loginUrl: string, oid: string): Promise<string> {
  const toPage = (target: string) =>
    target.startsWith(origin) && !new URL(target).pathname.startsWith('/auth/');
  const shown = await agent.navigate(`${origin}${loginUrl}`, toPage);
  expect(shown.location, 'the emulator asked for the step-up').toBeUndefined();
  expect(shown.response.status).toBe(200);
  expect(shown.response.url).toMatch(/\/login\//);
  const page = await shown.response.text();
  const action = /<form method="post" action="([^"]+)">/.exec(page)?.[1] ?? '';
  const picked = await agent.fetch(new URL(action, shown.response.url).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ oid }).toString(),
  });
  const next = new URL(picked.headers.get('location') ?? '', shown.response.url).href;
  const { location } = await agent.navigate(next, toPage);
  expect(location).toBeDefined();
  return location ?? '';
}

/** The claims of the access token the notes API saw last for `oid`. */
function lastNotesToken(oid: string): Record<string, unknown> {
  const seen = notes
    .requests()
    .map((request) => decodeJwt(String(request.headers.authorization).split(' ')[1] ?? ''))
    .filter((claims) => claims.oid === oid);
  return seen.at(-1) ?? {};
}

function notesRequestsOf(oid: string): number {
  return notes
    .requests()
    .filter(
      (request) => decodeJwt(String(request.headers.authorization).split(' ')[1] ?? '').oid === oid,
    ).length;
}

describe('claims challenges from an API', () => {
  it('challenge → 401 with a loginUrl carrying the claims → step-up sign-in → the call succeeds silently with acrs in the token the API saw', async () => {
    notes.requireClaims({ acrs: 'c1', oid: stepUpUser.oid, path: '/v1/notes' });
    const agent = new UserAgent();
    await signInThroughApp(agent, origin, stepUpUser.preferred_username);

    // The token has no acrs; the silent retry with the challenge's claims is refused by the IdP
    // (the sign-in did not satisfy c1), so the user must step up.
    const refreshesBefore = emulator.counters().token.refresh_token ?? 0;
    const challenged = await call(agent, '/api/notes/notes');
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('content-type')).toBe('application/problem+json');
    expect(claimsOfLoginUrl(challenged.json.loginUrl)).toBe(C1);
    expect(new URL(String(challenged.json.loginUrl), origin).searchParams.get('returnTo')).toBe(
      '/',
    );
    // The notes token, then the one silent retry with the claims, which the IdP refused: the API
    // saw one call.
    expect((emulator.counters().token.refresh_token ?? 0) - refreshesBefore).toBe(2);
    expect(notesRequestsOf(stepUpUser.oid)).toBe(1);
    expect(lastNotesToken(stepUpUser.oid).xms_cc).toEqual(['cp1']);
    // The session stays: the user is still signed in.
    expect((await call(agent, '/auth/me')).status).toBe(200);

    const sessionBefore = agent.cookies(origin).get(SESSION_COOKIE);
    expect(await signInWithStepUp(agent, String(challenged.json.loginUrl), stepUpUser.oid)).toBe(
      `${origin}/`,
    );
    expect(agent.cookies(origin).get(SESSION_COOKIE)).not.toBe(sessionBefore);

    // The cached notes token has no acrs: the API challenges again, and the silent retry with the
    // claims now succeeds, as the step-up's refresh token satisfies c1.
    const callsBefore = notesRequestsOf(stepUpUser.oid);
    const refreshesAfterSignIn = emulator.counters().token.refresh_token ?? 0;
    const answered = await call(agent, '/api/notes/notes');
    expect(answered.status).toBe(200);
    expect(notesRequestsOf(stepUpUser.oid) - callsBefore).toBe(2);
    expect((emulator.counters().token.refresh_token ?? 0) - refreshesAfterSignIn).toBe(1);
    const token = lastNotesToken(stepUpUser.oid);
    expect(token.acrs).toEqual(['c1']);
    expect(token.xms_cc).toEqual(['cp1']);
    expect(token.aud).toBe(NOTES_CLIENT_ID);

    // The token with acrs is cached: the next call goes through at once.
    const calls = notesRequestsOf(stepUpUser.oid);
    expect((await call(agent, '/api/notes/notes')).status).toBe(200);
    expect(notesRequestsOf(stepUpUser.oid)).toBe(calls + 1);
  });

  it('/api/todos too: the read after the step-up goes through with the sign-in token, and the first write gets its token silently with the claims', async () => {
    todos.requireClaims({ acrs: 'c1', oid: todoStepUpUser.oid, path: '/api/todolist' });
    const agent = new UserAgent();
    await signInThroughApp(agent, origin, todoStepUpUser.preferred_username);
    const tokensSeen = () =>
      todos
        .requests()
        .map((request) => decodeJwt(String(request.headers.authorization).split(' ')[1] ?? ''))
        .filter((claims) => claims.oid === todoStepUpUser.oid);

    const challenged = await call(agent, '/api/todos');
    expect(challenged.status).toBe(401);
    expect(claimsOfLoginUrl(challenged.json.loginUrl)).toBe(C1);
    await signInWithStepUp(agent, String(challenged.json.loginUrl), todoStepUpUser.oid);

    // The code's access token (the read scope) carries acrs: no challenge, no token request.
    const seenBefore = tokensSeen().length;
    const tokenRequests = emulator.counters().token.refresh_token ?? 0;
    const read = await call(agent, '/api/todos');
    expect(read.status).toBe(200);
    expect(tokensSeen().length - seenBefore).toBe(1);
    expect(tokensSeen().at(-1)?.acrs).toEqual(['c1']);
    expect(emulator.counters().token.refresh_token ?? 0).toBe(tokenRequests);

    // The write scope's first token comes from a refresh without claims (no acrs, challenged),
    // then silently with them.
    const written = await agent.fetch(`${origin}/api/todos`, {
      method: 'POST',
      headers: {
        'x-csrf': '1',
        'sec-fetch-site': 'same-origin',
        origin,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ description: 'after the step-up' }),
    });
    expect(written.status).toBe(201);
    expect(tokensSeen().length - seenBefore).toBe(3);
    expect(tokensSeen().at(-2)?.acrs).toBeUndefined();
    expect(tokensSeen().at(-1)?.acrs).toEqual(['c1']);
    expect(tokensSeen().at(-1)?.scp).toBe('ToDoList.ReadWrite');
  });

  it('a second challenge right after the step-up sign-in does not loop: one sign-in round, then 401 "keeps refusing" without a loginUrl', async () => {
    notes.requireClaims({ acrs: 'c1', oid: refusedUser.oid, path: '/v1/notes', always: true });
    const agent = new UserAgent();
    await signInThroughApp(agent, origin, refusedUser.preferred_username);

    const challenged = await call(agent, '/api/notes/notes');
    expect(challenged.status).toBe(401);
    expect(claimsOfLoginUrl(challenged.json.loginUrl)).toBe(C1);
    await signInWithStepUp(agent, String(challenged.json.loginUrl), refusedUser.oid);

    const before = notesRequestsOf(refusedUser.oid);
    const refused = await call(agent, '/api/notes/notes');
    expect(refused.status).toBe(401);
    expect(refused.json).toMatchObject({ title: 'The API keeps refusing', status: 401 });
    expect(refused.json).not.toHaveProperty('loginUrl');
    expect(String(refused.json.detail)).toContain('"notes"');
    // The token without acrs, then the one silent retry with claims (acrs c1): no more.
    expect(notesRequestsOf(refusedUser.oid) - before).toBe(2);
    expect(lastNotesToken(refusedUser.oid).acrs).toEqual(['c1']);
    // Still signed in: nothing was deleted.
    expect((await call(agent, '/auth/me')).status).toBe(200);
  });

  it('a 401 whose claims are not a claims request is an ordinary refusal: one refreshed retry, no loginUrl with claims', async () => {
    const agent = new UserAgent();
    await signInThroughApp(agent, origin, todoUser.preferred_username);
    notes.script({
      status: 401,
      headers: { 'www-authenticate': 'Bearer error="insufficient_claims", claims="W10="' },
      count: 2,
    });
    const before = notesRequestsOf(todoUser.oid);
    const refused = await call(agent, '/api/notes/notes');
    expect(refused.status).toBe(401);
    expect(claimsOfLoginUrl(refused.json.loginUrl)).toBeUndefined();
    expect(notesRequestsOf(todoUser.oid) - before).toBe(2);
  });
});

describe('/auth/signin?claims=', () => {
  const signInWith = (query: Record<string, string>, agent = new UserAgent()) =>
    agent.fetch(`${origin}/auth/signin?${new URLSearchParams({ returnTo: '/', ...query })}`);

  it('passes valid claims to the authorize request, merged with the cp1 capability by msal-node', async () => {
    const response = await signInWith({ claims: Buffer.from(C1).toString('base64url') });
    expect(response.status).toBe(302);
    const authorize = new URL(response.headers.get('location') ?? '');
    expect(authorize.origin).toBe(emulator.origin);
    const claims = JSON.parse(authorize.searchParams.get('claims') ?? '{}') as {
      access_token: Record<string, unknown>;
    };
    // msal-common request/RequestParameterBuilder.ts buildMergedClaims.
    expect(claims.access_token).toEqual({
      acrs: { essential: true, value: 'c1' },
      xms_cc: { values: ['cp1'] },
    });
    // Only `claims` came from the parameter: no other authorize parameter appeared or changed.
    const plain = new URL((await signInWith({})).headers.get('location') ?? '');
    const names = (url: URL) => [...new Set(url.searchParams.keys())].sort();
    expect(names(authorize)).toEqual(names(plain));
  });

  it('refuses bad claims with a 400 problem before anything is stored', async () => {
    const oversized = `{"access_token":{"x":"${'a'.repeat(1100)}"}}`;
    const injected = `${Buffer.from(C1).toString('base64url')}&prompt=none`;
    for (const claims of [
      '',
      'not base64url!',
      // Standard base64 with padding, as an API's challenge spells it: not the parameter's form.
      Buffer.from(`${C1} `).toString('base64'),
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('{"access_token":"c1"}').toString('base64url'),
      Buffer.from(oversized).toString('base64url'),
      injected,
    ]) {
      const response = await signInWith({ claims });
      expect(response.status, claims).toBe(400);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(response.headers.getSetCookie()).toEqual([]);
      expect(((await response.json()) as { title: string }).title).toBe('Invalid claims');
    }
  });

  it('any claims value: 302 with the same authorize parameters and claims that are exactly its JSON merged with xms_cc, or 400 with no cookie; never anything else', async () => {
    const plain = new URL((await signInWith({})).headers.get('location') ?? '');
    const names = [...new Set(plain.searchParams.keys())].sort();
    // Claims requests whose members try to carry anything (parameters, quotes, control
    // characters), other JSON, and plain text; as base64url, as base64, and as they are.
    const request = fc
      .dictionary(
        fc.oneof(fc.constantFrom('access_token', 'id_token', 'userinfo'), fc.string()),
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
        { minKeys: 1, maxKeys: 3 },
      )
      .map((value) => JSON.stringify(value));
    const otherJson = fc.oneof(
      fc.json({ maxDepth: 2 }),
      fc.constantFrom(`{"access_token":{"acrs":{"value":"c1"}}}&prompt=none`, '{"a":{}}\u0000'),
    );
    const claimsValue = fc.oneof(
      { arbitrary: request.map((text) => Buffer.from(text).toString('base64url')), weight: 3 },
      otherJson.map((text) => Buffer.from(text).toString('base64url')),
      request.map((text) => Buffer.from(text).toString('base64')),
      fc.string(),
    );
    const seen = { 302: 0, 400: 0 };
    await fc.assert(
      fc.asyncProperty(claimsValue, async (claims) => {
        const response = await signInWith({ claims });
        if (response.status === 302 || response.status === 400) seen[response.status] += 1;
        if (response.status === 400) {
          expect(response.headers.getSetCookie()).toEqual([]);
          expect(response.headers.get('content-type')).toBe('application/problem+json');
          return;
        }
        expect(response.status).toBe(302);
        const authorize = new URL(response.headers.get('location') ?? '');
        expect([...new Set(authorize.searchParams.keys())].sort()).toEqual(names);
        expect(authorize.searchParams.getAll('claims')).toHaveLength(1);
        const sent = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as Record<
          string,
          Record<string, unknown>
        >;
        const merged = JSON.parse(authorize.searchParams.get('claims') ?? '') as Record<
          string,
          Record<string, unknown>
        >;
        expect(merged.access_token?.xms_cc).toEqual({ values: ['cp1'] });
        for (const [member, requested] of Object.entries(sent)) {
          for (const [claim, value] of Object.entries(requested)) {
            if (member !== 'access_token' || claim !== 'xms_cc') {
              expect(merged[member]?.[claim]).toEqual(value);
            }
          }
        }
      }),
      propertyParameters(150),
    );
    // Both outcomes were exercised, not only refusals.
    expect(seen[302]).toBeGreaterThan(30);
    expect(seen[400]).toBeGreaterThan(30);
  });

  it('keeps five sign-ins with the largest claims inside the cookie budget, and refuses claims with a returnTo too long to fit', async () => {
    const largest = `{"access_token":{"x":"${'a'.repeat(1024 - 25)}"}}`;
    const agent = new UserAgent();
    for (let tab = 0; tab < 5; tab += 1) {
      expect(
        (await signInWith({ claims: Buffer.from(largest).toString('base64url') }, agent)).status,
      ).toBe(302);
    }
    const pending = [...agent.cookies(origin)].filter(([name]) => name.startsWith(SIGN_IN_PREFIX));
    expect(pending.length).toBeGreaterThan(0);
    const bytes = pending.reduce((sum, [name, value]) => sum + name.length + value.length + 3, 0);
    expect(bytes).toBeLessThanOrEqual(3500);

    const tooLong = await signInWith(
      { returnTo: `/${'a'.repeat(2047)}`, claims: Buffer.from(largest).toString('base64url') },
      agent,
    );
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as { title: string }).title).toBe('Sign-in request too large');
  });
});
