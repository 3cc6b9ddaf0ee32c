import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Fault, TestUser, UserProfile } from '../../dev/entra-emulator/emulator.mts';
import { rawRequest, type RawAnswer } from '../security/support/http.ts';
import {
  Caller,
  Cluster,
  privateUsers,
  SESSION_COOKIE,
  TOKEN_CACHE_ROW_KEY,
} from '../resilience/support/cluster.ts';
import { signInThroughApp } from '../support/app-session.ts';
import { UserAgent } from '../support/user-agent.ts';

// The app against an Entra emulator that fails the way Entra does (dev/entra-emulator/README.md,
// "Faults"), in a stack of this file's own: an IdP outage is a 503 (504 when it hangs) that keeps
// tokens and session, the IdP's Retry-After is honoured per user, a refresh that needs the user
// keeps everything and asks for a sign-in, only a dead refresh token deletes the tokens, and the
// sign-in callback tells an outage, a refused app credential and missing admin consent apart.

const TIMEOUT_MS = 1500;
const names = ['ann', 'ben', 'cat', 'dan', 'eda', 'fin', 'gil', 'hoa', 'ira', 'jon', 'kai'];
const named = privateUsers('idpf', names);
const user = (name: string): TestUser => named[names.indexOf(name)] as TestUser;
const outageUsers = privateUsers('outage', ['o1', 'o2', 'o3', 'o4']);
const rejectionUsers = privateUsers('reject', ['r1', 'r2', 'r3', 'r4', 'r5']);
// Optional claims are optional: a phone sign-in (no username, no email, no login_hint claim), an
// email-only user, and one with none of the claims that name a user.
const phoneUser: UserProfile = {
  oid: 'a0c0ffee-0000-4000-8000-000000000001',
  name: 'Phone Person',
  loginHintClaim: false,
};
const mailUser: UserProfile = {
  oid: 'a0c0ffee-0000-4000-8000-000000000002',
  email: 'only-mail@idpf.example',
};
const bareUser: UserProfile = { oid: 'a0c0ffee-0000-4000-8000-000000000003' };

let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({
    users: [
      ...named,
      ...outageUsers,
      ...rejectionUsers,
      phoneUser,
      mailUser,
      bareUser,
    ] as TestUser[],
    appEnv: { TODOLIST_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
});

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(() => {
  cluster.emulator.clearFaults();
  cluster.api.clearFaults();
});

const refreshes = () => cluster.emulator.counters().token.refresh_token ?? 0;

/** A call that needs a refresh: the API rejects the cached access token once. */
function callNeedingRefresh(caller: Caller): Promise<RawAnswer> {
  cluster.api.setFault({ mode: 'reject_token', count: 1 });
  return caller.call('GET', '/api/todos');
}

function me(cookie: string): Promise<RawAnswer> {
  return rawRequest(cluster.origin, {
    path: '/auth/me',
    headers: { cookie: `${SESSION_COOKIE}=${cookie}` },
  });
}

async function tokenRow(who: TestUser): Promise<string | undefined> {
  return (await cluster.tokenStore().read(cluster.homeAccountId(who)))?.etag;
}

/** Starts a sign-in for `hint` and stops at the app's callback, before the app redeems the code. */
async function callbackUrl(agent: UserAgent, hint: string): Promise<string> {
  const start = `${cluster.origin}/auth/signin?${new URLSearchParams({ returnTo: '/', loginHint: hint })}`;
  const { location } = await agent.navigate(start, (target) =>
    target.startsWith(`${cluster.origin}/auth/redirect`),
  );
  return location ?? '';
}

describe('an IdP outage during a refresh is unavailable: 503 with Retry-After, tokens and session kept', () => {
  it.each([
    ['500 JSON server_error (AADSTS90036)', { kind: 'server_error' }, 0, '5'],
    ['503 JSON temporarily_unavailable', { kind: 'token_5xx', status: 503 }, 1, '5'],
    [
      '503 with an HTML body (token_parsing_error)',
      { kind: 'html_503', retryAfterSeconds: 7 },
      2,
      '7',
    ],
    [
      '429 with an empty body and Retry-After',
      { kind: 'throttled', retryAfterSeconds: 40 },
      3,
      '40',
    ],
  ] as const)('%s', async (_case, fault, index, retryAfter) => {
    const who = outageUsers[index] as TestUser;
    const caller = await cluster.signIn(who);
    const rowBefore = await tokenRow(who);
    cluster.emulator.setFault({ ...(fault as Fault), oid: who.oid });
    const answer = await callNeedingRefresh(caller);
    expect(answer.status, answer.text).toBe(503);
    expect(answer.headers['retry-after']).toBe(retryAfter);
    expect(answer.json).toMatchObject({ title: 'Service unavailable' });
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(await tokenRow(who)).toBe(rowBefore);
    expect((await me(caller.cookieValue)).status).toBe(200);
  });
});

describe("the IdP's Retry-After, honoured per user", () => {
  it('holds that user back with the time left and no token request; others are served', async () => {
    const held = await cluster.signIn(user('ann'));
    const other = await cluster.signIn(user('ben'));
    cluster.emulator.setFault({ kind: 'throttled', retryAfterSeconds: 90, oid: user('ann').oid });
    const first = await callNeedingRefresh(held);
    expect(first.status).toBe(503);
    expect(first.headers['retry-after']).toBe('90');

    const asked = refreshes();
    const again = await callNeedingRefresh(held);
    expect(again.status).toBe(503);
    const left = Number(again.headers['retry-after']);
    expect(left).toBeGreaterThan(60);
    expect(left).toBeLessThanOrEqual(90);
    expect(refreshes()).toBe(asked);

    expect((await callNeedingRefresh(other)).status).toBe(200);
    expect(refreshes()).toBe(asked + 1);
  });
});

describe('a hung IdP', () => {
  it('answers 504 within TODOLIST_TIMEOUT_MS for the user it hangs on, while another is served', async () => {
    const stuck = await cluster.signIn(user('cat'));
    const other = await cluster.signIn(user('dan'));
    cluster.emulator.setFault({ kind: 'hang', oid: user('cat').oid });
    const pending = callNeedingRefresh(stuck);
    await expect.poll(() => cluster.emulator.pendingTokenRequests()).toBe(1);
    // The IdP holds the one request; the other user's refresh goes through meanwhile.
    const served = await callNeedingRefresh(other);
    expect(served.status, served.text).toBe(200);
    const answer = await pending;
    expect(answer.status, answer.text).toBe(504);
    expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
    expect((await me(stuck.cookieValue)).status).toBe(200);
    cluster.emulator.clearFaults();
    expect((await callNeedingRefresh(stuck)).status).toBe(200);
  });
});

describe('a refresh the IdP refuses', () => {
  it.each([
    ['MFA required (AADSTS50076, basic_action)', 'refresh_mfa_required', 0],
    [
      'MFA registration required (AADSTS50079, additional_action)',
      'refresh_mfa_registration_required',
      1,
    ],
  ] as const)(
    '%s needs the user: 401 with loginUrl; tokens and session kept',
    async (_case, kind, index) => {
      const who = rejectionUsers[index] as TestUser;
      const caller = await cluster.signIn(who);
      const rows = await cluster.rowKeysOf(who);
      cluster.emulator.setFault({ kind, oid: who.oid });
      const answer = await callNeedingRefresh(caller);
      expect(answer.status, answer.text).toBe(401);
      expect(answer.json?.loginUrl).toBe('/auth/signin?returnTo=%2F');
      expect(answer.headers['set-cookie']).toBeUndefined();
      expect(await cluster.rowKeysOf(who)).toEqual(rows);
      expect((await me(caller.cookieValue)).status).toBe(200);
      cluster.emulator.clearFaults();
      expect((await callNeedingRefresh(caller)).status).toBe(200);
    },
  );

  it.each([
    ['expired (AADSTS700082)', 'refresh_expired', 2],
    ['ended by Conditional Access sign-in frequency (AADSTS70043)', 'refresh_session_expired', 3],
    ['revoked (AADSTS50173)', 'refresh_invalid_grant', 4],
  ] as const)(
    'a dead refresh token, %s: 401, tokens and session deleted',
    async (_case, kind, index) => {
      const who = rejectionUsers[index] as TestUser;
      const caller = await cluster.signIn(who);
      const cookie = caller.cookieValue;
      cluster.emulator.setFault({ kind, oid: who.oid });
      const answer = await callNeedingRefresh(caller);
      expect(answer.status, answer.text).toBe(401);
      expect(
        answer.headers['set-cookie']?.some((line) => line.startsWith(`${SESSION_COOKIE}=;`)),
      ).toBe(true);
      expect(await cluster.rowKeysOf(who)).not.toContain(TOKEN_CACHE_ROW_KEY);
      expect((await me(cookie)).status).toBe(401);
    },
  );

  it('admin consent missing: 403 an operator can act on; tokens and session kept', async () => {
    const caller = await cluster.signIn(user('eda'));
    const rows = await cluster.rowKeysOf(user('eda'));
    cluster.emulator.setFault({ kind: 'admin_consent_missing', oid: user('eda').oid });
    const answer = await caller.call('DELETE', '/api/todos/none');
    expect(answer.status, answer.text).toBe(403);
    expect(answer.json?.detail).toMatch(/administrator must grant admin consent/);
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(await cluster.rowKeysOf(user('eda'))).toEqual(rows);
    expect(cluster.output()).toMatch(/admin consent .*AADSTS65001/);
  });
});

describe('the sign-in callback', () => {
  it('an IdP outage at code redemption: 503 page saying the IdP is unavailable, with Retry-After', async () => {
    const agent = new UserAgent();
    const callback = await callbackUrl(agent, user('fin').preferred_username);
    cluster.emulator.setFault({ kind: 'server_error', count: 1 });
    const page = await agent.fetch(callback);
    expect(page.status).toBe(503);
    expect(Number(page.headers.get('retry-after'))).toBeGreaterThan(0);
    const html = await page.text();
    expect(html).toContain('identity provider is unavailable');
    expect(html).not.toContain('used already');
  });

  it("the app's credential refused (invalid_client): a page and a log line saying so", async () => {
    const agent = new UserAgent();
    const callback = await callbackUrl(agent, user('gil').preferred_username);
    cluster.emulator.setFault({ kind: 'client_secret_expired', count: 1 });
    const page = await agent.fetch(callback);
    expect(page.status).toBe(502);
    const html = await page.text();
    expect(html).toContain('refused the credentials of this app');
    expect(html).not.toContain('used already');
    expect(cluster.output()).toMatch(/refused the app's client credential \(invalid_client\)/);
  });

  it('admin consent missing at redemption: a sign-in failure page, not a 500', async () => {
    const agent = new UserAgent();
    const callback = await callbackUrl(agent, user('hoa').preferred_username);
    cluster.emulator.setFault({ kind: 'admin_consent_missing', count: 1 });
    const page = await agent.fetch(callback);
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('an administrator must grant admin consent');
  });

  it('admin consent missing at authorize: the IdP shows its admin-approval page; coming back is a failure page', async () => {
    const agent = new UserAgent();
    cluster.emulator.setFault({ kind: 'admin_consent_missing', oid: user('ira').oid });
    const start = `${cluster.origin}/auth/signin?${new URLSearchParams({ returnTo: '/', loginHint: user('ira').preferred_username })}`;
    const { response } = await agent.navigate(start, () => false);
    const approval = await response.text();
    expect(approval).toContain('Need admin approval');
    const back = /href="([^"]+)"/.exec(approval)?.[1]?.replaceAll('&amp;', '&') ?? '';
    const page = await agent.fetch(back);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain('access_denied');
  });
});

describe('users without the optional claims', () => {
  async function signInAs(
    profile: UserProfile,
  ): Promise<{ caller: Caller; body: Record<string, unknown> }> {
    const agent = new UserAgent();
    await signInThroughApp(agent, cluster.origin, profile.oid);
    const caller = new Caller(cluster, profile as TestUser, agent);
    const answer = await me(caller.cookieValue);
    expect(answer.status, answer.text).toBe(200);
    return { caller, body: answer.json ?? {} };
  }

  it('a phone sign-in: username is the name; sign-out sends no logout_hint', async () => {
    const { caller, body } = await signInAs(phoneUser);
    expect(body).toMatchObject({ name: 'Phone Person', username: 'Phone Person' });
    const out = await caller.call('POST', '/auth/signout');
    expect(out.status).toBe(303);
    const endSession = new URL(out.headers.location ?? '');
    expect(endSession.searchParams.has('logout_hint')).toBe(false);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${cluster.origin}/`);
  });

  it('an email-only user: username and name are the email', async () => {
    const { body } = await signInAs(mailUser);
    expect(body).toMatchObject({ name: mailUser.email, username: mailUser.email });
  });

  it('a user with none of the naming claims: a neutral label', async () => {
    const { body } = await signInAs(bareUser);
    expect(body).toMatchObject({ name: 'Signed-in user', username: 'Signed-in user' });
  });
});
