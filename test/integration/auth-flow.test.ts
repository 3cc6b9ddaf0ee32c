import { TableClient } from '@azure/data-tables';
import { describe, expect, it } from 'vitest';
import { parseSetCookies, signInThroughApp } from '../support/app-session.ts';
import { testStack, testUser } from '../support/stack.ts';
import { UserAgent } from '../support/user-agent.ts';

const stack = testStack();
const app = stack.appOrigin;
// Users of this file alone (see TEST_USERS).
const alice = testUser('ada@contoso.example');
const bob = testUser('ben@contoso.example');
const table = TableClient.fromConnectionString(
  stack.settings.TOKEN_CACHE_STORAGE ?? '',
  stack.settings.TOKEN_CACHE_TABLE ?? '',
  { allowInsecureConnection: true },
);
const SIGN_IN_PREFIX = '__Host-bff-signin-';
const homeAccountId = (oid: string) => `${oid}.${stack.emulator.tenantId}`;

async function rowKeysOf(oid: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const row of table.listEntities({
    queryOptions: { filter: `PartitionKey eq '${homeAccountId(oid)}'` },
  })) {
    keys.push(row.rowKey ?? '');
  }
  return keys.sort();
}

async function me(agent: UserAgent, headers: Record<string, string> = {}) {
  const response = await agent.fetch(`${app}/auth/me`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Starts a sign-in and stops at the app's callback URL, before the app sees it. */
async function callbackUrl(agent: UserAgent, username: string, returnTo = '/'): Promise<string> {
  const start = `${app}/auth/signin?${new URLSearchParams({ returnTo, loginHint: username })}`;
  const { location } = await agent.navigate(start, (target) =>
    target.startsWith(`${app}/auth/redirect`),
  );
  return location ?? '';
}

/** The browser's sign-in cookies for the app, as name/value pairs. */
function signInCookies(agent: UserAgent): [string, string][] {
  return [...agent.cookies(app)].filter(([name]) => name.startsWith(SIGN_IN_PREFIX));
}

/** The Cookie header the browser sends the app, with the app's own cookies only. */
function appCookieHeader(agent: UserAgent): string {
  return [...agent.cookies(app)]
    .filter(([name]) => name.startsWith('__Host-bff-'))
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
}

async function signOut(agent: UserAgent, init: RequestInit = {}) {
  return agent.fetch(`${app}/auth/signout`, { method: 'POST', ...init });
}

describe('sign-in, session and sign-out over HTTP', () => {
  it('runs the whole flow and removes every row at sign-out', async () => {
    const agent = new UserAgent();
    expect(await signInThroughApp(agent, app, alice.preferred_username, '/todos?view=all')).toBe(
      `${app}/todos?view=all`,
    );
    const signedIn = await me(agent);
    expect(signedIn.status).toBe(200);
    expect(signedIn.body).toMatchObject({
      name: alice.name,
      username: alice.preferred_username,
      signOut: { url: '/auth/signout', method: 'POST' },
      // The shared app is configured with the default API only.
      apis: ['todos'],
    });
    expect(Date.parse(String(signedIn.body.expiresAt))).toBeGreaterThan(Date.now());
    const rows = await rowKeysOf(alice.oid);
    expect(rows).toContain('tokencache');
    expect(rows.filter((key) => key.startsWith('session.'))).toHaveLength(1);

    const sessionCookie = agent.cookies(app).get('__Host-bff-session') ?? '';
    const out = await signOut(agent, { headers: { 'X-CSRF': '1' } });
    expect(out.status).toBe(303);
    const endSession = new URL(out.headers.get('location') ?? '');
    expect(`${endSession.origin}${endSession.pathname}`).toBe(
      `${stack.emulator.origin}/${stack.emulator.tenantId}/oauth2/v2.0/logout`,
    );
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${app}/`);
    expect(endSession.searchParams.get('logout_hint')).toBeTruthy();
    expect(
      parseSetCookies(out).map((cookie) => [cookie.name, cookie.attributes['max-age']]),
    ).toEqual([['__Host-bff-session', '0']]);

    expect((await me(agent)).status).toBe(401);
    expect(await rowKeysOf(alice.oid)).toEqual([]);
    // The cookie kept from before sign-out is refused too.
    const replayed = await me(new UserAgent(), { cookie: `__Host-bff-session=${sessionCookie}` });
    expect(replayed.status).toBe(401);
    expect(replayed.body.loginUrl).toBe('/auth/signin?returnTo=%2F');
  });

  it('sets every cookie with exactly the required attributes', async () => {
    const agent = new UserAgent();
    const start = await agent.fetch(`${app}/auth/signin?returnTo=/`);
    expect(start.status).toBe(302);
    const [signInCookie] = parseSetCookies(start);
    expect(signInCookie?.name).toMatch(/^__Host-bff-signin-[A-Za-z0-9_-]{16}$/);
    expect(signInCookie?.attributes).toEqual({
      'max-age': '600',
      path: '/',
      secure: '',
      samesite: 'lax',
      httponly: '',
    });

    const callback = await callbackUrl(agent, bob.preferred_username);
    const done = await agent.fetch(callback);
    expect(done.status).toBe(302);
    const cookies = parseSetCookies(done);
    const session = cookies.find((cookie) => cookie.name === '__Host-bff-session');
    expect(session?.attributes).toEqual({
      'max-age': String(24 * 3600),
      path: '/',
      secure: '',
      samesite: 'strict',
      httponly: '',
    });
    // 32 random bytes sealed: far more than 128 bits, and opaque.
    expect(Buffer.from(session?.value ?? '', 'base64url').length).toBeGreaterThan(60);
    expect(session?.value).not.toContain(bob.oid);
    const cleared = cookies.filter((cookie) => cookie.name.startsWith(SIGN_IN_PREFIX));
    expect(cleared.map((cookie) => cookie.attributes['max-age'])).toEqual(['0']);
  });

  it('asks the IdP for PKCE S256, state, nonce and the read scope', async () => {
    const start = await new UserAgent().fetch(`${app}/auth/signin?returnTo=/`);
    const authorize = new URL(start.headers.get('location') ?? '');
    expect(authorize.origin).toBe(stack.emulator.origin);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('response_mode')).toBe('query');
    expect(authorize.searchParams.get('scope')?.split(' ').sort()).toEqual(
      ['offline_access', 'openid', 'profile', stack.settings.TODOLIST_READ].sort(),
    );
  });

  it.each([
    ['//evil.example', '/'],
    ['https://evil.example', '/'],
    ['/\\evil.example', '/'],
    ['/%2F%2Fevil.example', '/'],
    ['javascript:alert(1)', '/'],
    ['/todos?filter=open&page=2', '/todos?filter=open&page=2'],
  ])('returnTo %s ends at %s', async (returnTo, expected) => {
    const agent = new UserAgent();
    expect(await signInThroughApp(agent, app, bob.preferred_username, returnTo)).toBe(
      `${app}${expected}`,
    );
  });

  it('refuses a tampered state and starts no session', async () => {
    const agent = new UserAgent();
    const url = new URL(await callbackUrl(agent, alice.preferred_username));
    url.searchParams.set('state', `${url.searchParams.get('state')}x`);
    const response = await agent.fetch(url.href);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('Sign in again');
    expect(agent.cookies(app).has('__Host-bff-session')).toBe(false);
  });

  it('refuses a callback without the sign-in cookie, and a replayed one', async () => {
    const agent = new UserAgent();
    const url = await callbackUrl(agent, alice.preferred_username);
    const [stateCookie] = signInCookies(agent);

    const stranger = new UserAgent();
    const withoutCookie = await stranger.fetch(url);
    expect(withoutCookie.status).toBe(400);
    expect(stranger.cookies(app).has('__Host-bff-session')).toBe(false);

    expect((await agent.fetch(url)).status).toBe(302);
    // The same callback again, even with the old sign-in cookie put back: the code is used up.
    const replay = new UserAgent();
    replay.cookies(app).set(...(stateCookie ?? ['', '']));
    const replayed = await replay.fetch(url);
    expect(replayed.status).toBe(400);
    expect(await replayed.text()).toContain('may have been used already');
    expect(replay.cookies(app).has('__Host-bff-session')).toBe(false);
  });

  it('shows a sign-in-again page when the user cancels at the IdP', async () => {
    const agent = new UserAgent();
    const url = new URL(await callbackUrl(agent, alice.preferred_username, '/after'));
    const cancelled = new URL(`${app}/auth/redirect`);
    cancelled.searchParams.set('error', 'access_denied');
    cancelled.searchParams.set('error_description', '<script>alert(1)</script>');
    cancelled.searchParams.set('state', url.searchParams.get('state') ?? '');
    const response = await agent.fetch(cancelled.href);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await response.text();
    expect(page).toContain('access_denied');
    expect(page).not.toContain('<script>');
    expect(page).toContain('href="/auth/signin?returnTo=%2Fafter"');
    expect(agent.cookies(app).has('__Host-bff-session')).toBe(false);
  });

  it.each([
    ['forged', Buffer.alloc(80, 1).toString('base64url')],
    ['garbled', '%%%not-base64%%%'],
    ['oversized', 'A'.repeat(5000)],
    ['empty', ''],
  ])('answers a %s session cookie with 401, never 500', async (_kind, value) => {
    const response = await me(new UserAgent(), { cookie: `__Host-bff-session=${value}` });
    expect(response.status).toBe(401);
    expect(response.body).toMatchObject({ status: 401, loginUrl: '/auth/signin?returnTo=%2F' });
    expect(JSON.stringify(response.body)).not.toMatch(/at .*\.js/);
  });

  it('never adopts a session cookie planted before sign-in (fixation)', async () => {
    const attacker = new UserAgent();
    await signInThroughApp(attacker, app, bob.preferred_username);
    const planted = attacker.cookies(app).get('__Host-bff-session') ?? '';

    const victim = new UserAgent();
    victim.cookies(app).set('__Host-bff-session', planted);
    await signInThroughApp(victim, app, alice.preferred_username);
    const issued = victim.cookies(app).get('__Host-bff-session');
    expect(issued).toBeDefined();
    expect(issued).not.toBe(planted);
    expect((await me(victim)).body.username).toBe(alice.preferred_username);
    // The planted session was ended rather than left for the attacker.
    expect((await me(attacker)).status).toBe(401);
  });

  it('refuses sign-out without CSRF proof, or from another origin', async () => {
    const agent = new UserAgent();
    await signInThroughApp(agent, app, bob.preferred_username);
    const csrfToken = String(((await me(agent)).body.signOut as { csrfToken: string }).csrfToken);

    expect((await signOut(agent)).status).toBe(403);
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    expect((await signOut(agent, { headers: form, body: 'csrf=wrong' })).status).toBe(403);
    expect(
      (await signOut(agent, { headers: { 'X-CSRF': '1', Origin: 'https://evil.example' } })).status,
    ).toBe(403);
    expect(
      (await signOut(agent, { headers: { 'X-CSRF': '1', 'Sec-Fetch-Site': 'cross-site' } })).status,
    ).toBe(403);
    expect((await me(agent)).status).toBe(200);

    const out = await signOut(agent, {
      headers: { ...form, Origin: app, 'Sec-Fetch-Site': 'same-origin' },
      body: `csrf=${encodeURIComponent(csrfToken)}`,
    });
    expect(out.status).toBe(303);
    expect((await me(agent)).status).toBe(401);
  });
});

describe('several sign-ins in one browser (tabs)', () => {
  it('completes three sign-ins started in three tabs, in reverse order', async () => {
    const browser = new UserAgent();
    const callbacks: string[] = [];
    for (const tab of ['one', 'two', 'three']) {
      callbacks.push(await callbackUrl(browser, alice.preferred_username, `/tab/${tab}`));
    }
    expect(signInCookies(browser)).toHaveLength(3);
    const landed: string[] = [];
    for (const callback of callbacks.reverse()) {
      const done = await browser.fetch(callback);
      expect(done.status, await done.clone().text()).toBe(302);
      landed.push(done.headers.get('location') ?? '');
      expect((await me(browser)).status).toBe(200);
    }
    expect(landed).toEqual(['/tab/three', '/tab/two', '/tab/one']);
    expect(signInCookies(browser)).toEqual([]);
    // Each completion replaced the browser's session: one is left.
    const rows = await rowKeysOf(alice.oid);
    expect(rows.filter((key) => key.startsWith('session.')).length).toBeGreaterThanOrEqual(1);
  });

  it('keeps the Cookie header under 4 KB over ten started sign-ins, and the five newest complete', async () => {
    const browser = new UserAgent();
    await signInThroughApp(browser, app, bob.preferred_username);
    const callbacks: string[] = [];
    let largest = 0;
    for (let tab = 0; tab < 10; tab += 1) {
      callbacks.push(await callbackUrl(browser, bob.preferred_username, `/tab/${tab}`));
      largest = Math.max(largest, appCookieHeader(browser).length);
    }
    // Measured with a session cookie and five sign-ins in progress (see SECURITY.md).
    expect(largest).toBeLessThan(4096);
    expect(signInCookies(browser)).toHaveLength(5);
    const statuses: number[] = [];
    for (const callback of callbacks) {
      const done = await browser.fetch(callback);
      await done.body?.cancel();
      statuses.push(done.status);
    }
    expect(statuses).toEqual([400, 400, 400, 400, 400, 302, 302, 302, 302, 302]);
    expect((await me(browser)).body.username).toBe(bob.preferred_username);
  });

  it('uses a state once: the same callback again fails, and other tabs still complete', async () => {
    const browser = new UserAgent();
    const first = await callbackUrl(browser, alice.preferred_username, '/first');
    const second = await callbackUrl(browser, alice.preferred_username, '/second');
    expect((await browser.fetch(first)).status).toBe(302);
    const replayed = await browser.fetch(first);
    expect(replayed.status).toBe(400);
    expect(await replayed.text()).toContain('does not match');
    const done = await browser.fetch(second);
    expect(done.status).toBe(302);
    expect(done.headers.get('location')).toBe('/second');
  });
});
