import {
  ConfidentialClientApplication,
  CryptoProvider,
  InteractionRequiredAuthError,
  ServerError,
  type AccountInfo,
} from '@azure/msal-node';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { request } from 'node:https';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startEntraEmulator,
  type EmulatorUser,
  type EntraEmulator,
} from '../../dev/entra-emulator/emulator.mts';
import { createMsalNetworkClient } from '../../dev/entra-emulator/msal-network-client.mts';
import {
  defaultTestUsers,
  displayName,
  type UserProfile,
} from '../../dev/entra-emulator/users.mts';
import { EmulatorBrowser, sendTrusting, type HttpsAnswer } from '../support/emulator-browser.ts';
import { testStack } from '../support/stack.ts';

const webApp = {
  clientId: 'a7d3c0de-4b1f-4c8e-9e21-7f6b5a4c3d2e',
  clientSecret: 'test-client-secret',
  // The post-logout redirect URI is a registered redirect URI, as Entra requires.
  redirectUris: ['https://app.example/auth/redirect', 'https://app.example/'],
};
const redirectUri = 'https://app.example/auth/redirect';
const apiClientId = 'e5f4d3c2-b1a0-4f9e-8d7c-6b5a4f3e2d1c';
const READ = `api://${apiClientId}/ToDoList.Read`;
const READ_WRITE = `api://${apiClientId}/ToDoList.ReadWrite`;

// Optional claims are optional (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference):
// a phone sign-in has no username or email and this one no login_hint claim; an email-only user;
// a one-time-passcode user, whose refresh tokens live 24 hours.
const phoneUser: UserProfile = {
  oid: '5c6f3a0e-2b1d-4e8a-9f47-1a2b3c4d5e11',
  name: 'Phone Person',
  loginHintClaim: false,
};
const emailOnlyUser: UserProfile = {
  oid: '5c6f3a0e-2b1d-4e8a-9f47-1a2b3c4d5e12',
  email: 'mail-only@contoso.example',
};
const passcodeUser: UserProfile = {
  oid: '5c6f3a0e-2b1d-4e8a-9f47-1a2b3c4d5e13',
  name: 'Pass Code',
  email: 'otp@contoso.example',
  signInMethod: 'email_otp',
};

let emulator: EntraEmulator;
let alice: EmulatorUser;
let bob: EmulatorUser;

/** An HTTPS request that trusts the emulator's CA. */
function send(url: string, init?: Parameters<typeof sendTrusting>[2]): Promise<HttpsAnswer> {
  return sendTrusting(emulator.caCertPem, url, init);
}

function newClient(clientSecret = webApp.clientSecret): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: {
      clientId: webApp.clientId,
      clientSecret,
      authority: emulator.authority,
      knownAuthorities: [new URL(emulator.origin).host],
    },
    system: { networkClient: createMsalNetworkClient(emulator.caCertPem) },
  });
}

interface AuthorizationRequest {
  user?: EmulatorUser;
  scopes: string[];
  client?: ConfidentialClientApplication;
  browser?: EmulatorBrowser;
  prompt?: string;
}

/** Runs the authorization request as MSAL builds it; login_hint signs the user in, no clicks. */
async function authorize({
  user,
  scopes,
  client = newClient(),
  browser = new EmulatorBrowser(emulator),
  prompt,
}: AuthorizationRequest) {
  const pkce = await new CryptoProvider().generatePkceCodes();
  const state = randomUUID();
  const nonce = randomUUID();
  const authorizationUrl = await client.getAuthCodeUrl({
    scopes,
    redirectUri,
    codeChallenge: pkce.challenge,
    codeChallengeMethod: 'S256',
    state,
    nonce,
    loginHint: user?.oid,
    prompt,
  });
  const { url, page } = await browser.follow(authorizationUrl);
  const callback = new URL(url);
  return {
    client,
    browser,
    page,
    callback,
    code: callback.searchParams.get('code') ?? '',
    verifier: pkce.verifier,
    state,
    nonce,
  };
}

async function signIn(request: AuthorizationRequest) {
  const authorization = await authorize(request);
  const result = await authorization.client.acquireTokenByCode(
    {
      code: authorization.code,
      scopes: request.scopes,
      redirectUri,
      codeVerifier: authorization.verifier,
      state: authorization.state,
      nonce: authorization.nonce,
    },
    { code: authorization.code, state: authorization.callback.searchParams.get('state') ?? '' },
  );
  return { ...authorization, result, account: result.account as AccountInfo };
}

function redeemWithHttp(code: string, verifier: string) {
  const basic = Buffer.from(`${webApp.clientId}:${webApp.clientSecret}`).toString('base64');
  return send(`${emulator.origin}/${emulator.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: redirectUri,
      scope: `${READ} openid profile offline_access`,
      client_info: '1',
    }).toString(),
  });
}

function refreshWithHttp(refreshToken: string) {
  return send(`${emulator.origin}/${emulator.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: webApp.clientId,
      client_secret: webApp.clientSecret,
      scope: `${READ} openid profile offline_access`,
    }).toString(),
  });
}

function refreshTokenOf(client: ConfidentialClientApplication): string | undefined {
  const cache = JSON.parse(client.getTokenCache().serialize()) as {
    RefreshToken: Record<string, { secret: string }>;
  };
  return Object.values(cache.RefreshToken).at(-1)?.secret;
}

/** Entra's error body: https://learn.microsoft.com/entra/identity-platform/reference-error-codes */
function expectEntraErrorBody(response: HttpsAnswer, code: number, error: string): void {
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(response.body) as Record<string, unknown>;
  expect(body).toMatchObject({
    error,
    error_codes: [code],
    trace_id: expect.stringMatching(/^[0-9a-f-]{36}$/) as string,
    correlation_id: expect.stringMatching(/^[0-9a-f-]{36}$/) as string,
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/) as string,
  });
  expect(body.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a failure'),
    (error: unknown) => error,
  );
}

describe('Entra External ID emulator', () => {
  beforeAll(async () => {
    emulator = await startEntraEmulator({
      clients: [webApp],
      api: { clientId: apiClientId },
      users: [...defaultTestUsers, phoneUser, emailOnlyUser, passcodeUser],
      // The run's CA, which this worker trusts (NODE_EXTRA_CA_CERTS), so MSAL's own fetch-based
      // network client can be used where its handling of an answer is what is tested.
      certDir: dirname(testStack().emulator.caCertPath),
    });
    [alice, bob] = emulator.users as [EmulatorUser, EmulatorUser];
  });

  afterAll(async () => {
    await emulator.close();
  });

  afterEach(() => {
    emulator.clearFaults();
  });

  it('serves Entra-shaped discovery under the tenant', async () => {
    const response = await send(`${emulator.authority}v2.0/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    const metadata = JSON.parse(response.body) as Record<string, unknown>;
    const tenantBase = `${emulator.origin}/${emulator.tenantId}`;
    expect(metadata).toMatchObject({
      issuer: emulator.issuer,
      authorization_endpoint: `${tenantBase}/oauth2/v2.0/authorize`,
      token_endpoint: `${tenantBase}/oauth2/v2.0/token`,
      end_session_endpoint: `${tenantBase}/oauth2/v2.0/logout`,
      jwks_uri: emulator.jwksUri,
    });
    expect(emulator.issuer).toBe(`${tenantBase}/v2.0`);
  });

  it('signs a user in with MSAL (code + PKCE) and issues Entra-shaped tokens', async () => {
    emulator.resetCounters();
    const { result, account, nonce } = await signIn({ user: alice, scopes: [READ, READ_WRITE] });

    // client_info in the response is what makes MSAL's homeAccountId <oid>.<tid>.
    expect(account.homeAccountId).toBe(`${alice.oid}.${emulator.tenantId}`);
    expect(result.idTokenClaims).toMatchObject({
      aud: webApp.clientId,
      iss: emulator.issuer,
      oid: alice.oid,
      tid: emulator.tenantId,
      sub: alice.sub,
      name: alice.name,
      preferred_username: alice.preferred_username,
      login_hint: alice.login_hint,
      ver: '2.0',
      nonce,
    });
    expect(alice.sub).not.toBe(alice.oid);

    const jwks = JSON.parse((await send(emulator.jwksUri)).body) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(
      result.accessToken,
      createLocalJWKSet(jwks),
      { issuer: emulator.issuer, audience: apiClientId, algorithms: ['RS256'] },
    );
    expect(protectedHeader.typ).toBe('JWT');
    expect(payload).toMatchObject({
      scp: 'ToDoList.Read ToDoList.ReadWrite',
      oid: alice.oid,
      tid: emulator.tenantId,
      sub: alice.sub,
      azp: webApp.clientId,
      ver: '2.0',
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(3600);
    expect(emulator.counters()).toMatchObject({
      discovery: 1,
      authorize: 1,
      token: { authorization_code: 1, refresh_token: 0 },
    });
  });

  it('answers acquireTokenSilent from the cache, and refreshes a token near expiry', async () => {
    const first = await signIn({ user: alice, scopes: [READ] });
    emulator.resetCounters();
    const cached = await first.client.acquireTokenSilent({
      account: first.account,
      scopes: [READ],
    });
    expect(cached.accessToken).toBe(first.result.accessToken);
    expect(emulator.counters().token).toEqual({ authorization_code: 0, refresh_token: 0 });

    // MSAL renews tokens expiring within 5 minutes: a 60-second token is due at once.
    emulator.setLifetimes({ accessTokenSeconds: 60 });
    const second = await signIn({ user: bob, scopes: [READ] }).finally(() =>
      emulator.setLifetimes({ accessTokenSeconds: 3600 }),
    );
    emulator.resetCounters();
    const renewed = await second.client.acquireTokenSilent({
      account: second.account,
      scopes: [READ],
    });
    expect(renewed.accessToken).not.toBe(second.result.accessToken);
    expect(decodeJwt(renewed.accessToken)).toMatchObject({ oid: bob.oid, scp: 'ToDoList.Read' });
    expect(emulator.counters().token).toEqual({ authorization_code: 0, refresh_token: 1 });

    const again = await second.client.acquireTokenSilent({
      account: second.account,
      scopes: [READ],
    });
    expect(again.accessToken).toBe(renewed.accessToken);
    expect(emulator.counters().token.refresh_token).toBe(1);
  });

  it('turns an injected rejection of a refresh into the errors MSAL raises for Entra', async () => {
    const { client, account } = await signIn({ user: alice, scopes: [READ] });
    const silent = () => client.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true });

    emulator.setFault({ kind: 'refresh_invalid_grant_plain', count: 1 });
    const plain = await failure(silent());
    expect(plain).toBeInstanceOf(ServerError);
    expect(plain).not.toBeInstanceOf(InteractionRequiredAuthError);
    expect(plain).toMatchObject({ errorCode: 'invalid_grant' });
    await expect(silent()).resolves.toMatchObject({ fromCache: false });

    emulator.setFault({ kind: 'refresh_invalid_grant', oid: bob.oid });
    await expect(silent()).resolves.toMatchObject({ fromCache: false });
    emulator.setFault({ kind: 'refresh_invalid_grant', oid: alice.oid, count: 1 });
    const badToken = await failure(silent());
    expect(badToken).toBeInstanceOf(InteractionRequiredAuthError);
    expect(badToken).toMatchObject({ errorCode: 'invalid_grant', subError: 'bad_token' });
  });

  it('redeems a code once, and only with the PKCE verifier and the client secret', async () => {
    const wrongSecret = await authorize({ user: alice, scopes: [READ], client: newClient('nope') });
    const rejectedClient = await failure(
      wrongSecret.client.acquireTokenByCode({
        code: wrongSecret.code,
        scopes: [READ],
        redirectUri,
        codeVerifier: wrongSecret.verifier,
      }),
    );
    expect(rejectedClient).toMatchObject({ errorCode: 'invalid_client' });

    const wrongVerifier = await authorize({ user: alice, scopes: [READ] });
    const otherVerifier = (await new CryptoProvider().generatePkceCodes()).verifier;
    const rejectedVerifier = await failure(
      wrongVerifier.client.acquireTokenByCode({
        code: wrongVerifier.code,
        scopes: [READ],
        redirectUri,
        codeVerifier: otherVerifier,
      }),
    );
    expect(rejectedVerifier).toMatchObject({ errorCode: 'invalid_grant' });

    const { code, verifier } = await authorize({ user: alice, scopes: [READ] });
    const redeemed = await redeemWithHttp(code, verifier);
    expect(redeemed.status).toBe(200);
    const tokens = JSON.parse(redeemed.body) as Record<string, string>;
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope: READ });
    expect(JSON.parse(Buffer.from(tokens.client_info ?? '', 'base64url').toString())).toEqual({
      uid: alice.oid,
      utid: emulator.tenantId,
    });

    const replayed = await redeemWithHttp(code, verifier);
    expect(replayed.status).toBe(400);
    expect(JSON.parse(replayed.body)).toMatchObject({ error: 'invalid_grant' });
    // As in Entra, a replayed code does not revoke what the first redemption issued.
    expect((await refreshWithHttp(tokens.refresh_token ?? '')).status).toBe(200);
  });

  it('lets two processes refresh with the same refresh token at once', async () => {
    const { client, account } = await signIn({ user: alice, scopes: [READ] });
    const serialized = client.getTokenCache().serialize();
    const refreshTokenIn = (cache: string) =>
      Object.values(
        (JSON.parse(cache) as { RefreshToken: Record<string, { secret: string }> }).RefreshToken,
      ).map((token) => token.secret);

    // Two app instances (processes) that loaded the same cache row.
    const instances = [newClient(), newClient()];
    for (const instance of instances) instance.getTokenCache().deserialize(serialized);
    emulator.resetCounters();
    const results = await Promise.all(
      instances.map((instance) =>
        instance.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true }),
      ),
    );
    expect(results.map((result) => result.fromCache)).toEqual([false, false]);
    expect(emulator.counters().token.refresh_token).toBe(2);
    // Each got a new (rotated) refresh token, and the old one still works.
    for (const instance of instances) {
      expect(refreshTokenIn(instance.getTokenCache().serialize())).not.toEqual(
        refreshTokenIn(serialized),
      );
    }
    await expect(
      client.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true }),
    ).resolves.toMatchObject({ fromCache: false });
  });

  it('consents tenant-wide: a refresh token redeems for any scope of the API, whatever the sign-in asked', async () => {
    const { client, account } = await signIn({ user: bob, scopes: [READ] });
    emulator.resetCounters();
    const write = await client.acquireTokenSilent({ account, scopes: [READ_WRITE] });
    expect(write.fromCache).toBe(false);
    expect(decodeJwt(write.accessToken)).toMatchObject({ scp: 'ToDoList.ReadWrite' });
    expect(emulator.counters().token.refresh_token).toBe(1);
    await expect(
      client.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true }),
    ).resolves.toMatchObject({ scopes: [READ] });
  });

  it('without admin consent: the authorize endpoint shows "Need admin approval" and the token endpoint answers AADSTS65001', async () => {
    const { client, account } = await signIn({ user: alice, scopes: [READ] });
    emulator.setFault({ kind: 'admin_consent_missing' });
    const gated = await authorize({ user: alice, scopes: [READ], client });
    expect(gated.page.status).toBe(200);
    expect(gated.page.body).toContain('Need admin approval');
    expect(gated.code).toBe('');
    const back = /href="([^"]+)"/.exec(gated.page.body)?.[1]?.replaceAll('&amp;', '&') ?? '';
    const returned = new URL(back);
    expect(`${returned.origin}${returned.pathname}`).toBe(redirectUri);
    expect(Object.fromEntries(returned.searchParams)).toMatchObject({
      error: 'access_denied',
      state: gated.state,
    });
    expect(returned.searchParams.get('error_description')).toMatch(/^AADSTS65004:/);

    const refused = await failure(
      client.acquireTokenSilent({ account, scopes: [READ_WRITE], forceRefresh: true }),
    );
    expect(refused).toBeInstanceOf(InteractionRequiredAuthError);
    expect(refused).toMatchObject({
      errorCode: 'invalid_grant',
      subError: 'consent_required',
      errorNo: 65001,
    });
  });

  it('shows a sign-in page listing the users; Cancel returns access_denied with the state', async () => {
    const { page, callback, state, browser, client } = await authorize({ scopes: [READ] });
    expect(page.status).toBe(200);
    expect(callback.pathname).toMatch(new RegExp(`^/${emulator.tenantId}/login/`));
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).not.toMatch(/<script/i);
    for (const user of emulator.users) {
      expect(page.body).toContain(`value="${user.oid}"`);
      expect(page.body).toContain(user.name ?? displayName(user));
      expect(page.body).toContain(displayName(user));
    }
    const cancelAction = /<form method="post" action="([^"]+\/cancel)">/.exec(page.body)?.[1];
    const cancelled = await browser.follow(new URL(cancelAction ?? '', emulator.origin).href, {});
    const redirect = new URL(cancelled.url);
    expect(`${redirect.origin}${redirect.pathname}`).toBe(redirectUri);
    expect(Object.fromEntries(redirect.searchParams)).toMatchObject({
      error: 'access_denied',
      state,
    });

    // prompt=login shows the page despite login_hint; the button signs in whoever it names.
    const forced = await authorize({
      user: alice,
      scopes: [READ],
      client,
      browser,
      prompt: 'login',
    });
    expect(forced.page.status).toBe(200);
    const chosen = await browser.follow(forced.callback.href, { oid: bob.oid });
    const code = new URL(chosen.url).searchParams.get('code') ?? '';
    const result = await client.acquireTokenByCode({
      code,
      scopes: [READ],
      redirectUri,
      codeVerifier: forced.verifier,
      nonce: forced.nonce,
    });
    expect(result.idTokenClaims).toMatchObject({ oid: bob.oid });
  });

  it('switches to the user a login_hint names, and shows the picker for select_account', async () => {
    const first = await signIn({ user: alice, scopes: [READ] });
    const second = await signIn({
      user: bob,
      scopes: [READ],
      client: first.client,
      browser: first.browser,
    });
    expect(second.result.idTokenClaims).toMatchObject({ oid: bob.oid });

    const picker = await authorize({
      user: bob,
      scopes: [READ],
      client: first.client,
      browser: first.browser,
      prompt: 'select_account',
    });
    expect(picker.page.status).toBe(200);
    const chosen = await first.browser.follow(picker.callback.href, { oid: alice.oid });
    expect(new URL(chosen.url).searchParams.get('code')).toMatch(/.+/);
  });

  it('logs out like Entra: ends the session, and redirects only to a registered URI', async () => {
    const { browser, client, result, account } = await signIn({ user: alice, scopes: [READ] });
    const logout = (postLogoutRedirectUri: string) =>
      `${emulator.origin}/${emulator.tenantId}/oauth2/v2.0/logout?${new URLSearchParams({
        post_logout_redirect_uri: postLogoutRedirectUri,
        logout_hint: alice.login_hint,
        id_token_hint: result.idToken,
      })}`;

    // Signed in: the next authorization request needs no page.
    const sso = await authorize({ scopes: [READ], client, browser });
    expect(sso.code).not.toBe('');

    emulator.resetCounters();
    const registered = await browser.send(logout('https://app.example/'));
    expect(registered.status).toBe(302);
    expect(registered.headers.location).toBe('https://app.example/');
    expect(emulator.counters().logout).toBe(1);

    const afterLogout = await authorize({ scopes: [READ], client, browser });
    expect(afterLogout.page.status).toBe(200);
    expect(afterLogout.code).toBe('');
    // Tokens issued before stay valid, as in Entra.
    await expect(
      client.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true }),
    ).resolves.toMatchObject({ fromCache: false });

    const unregistered = await browser.send(logout('https://attacker.example/'));
    expect(unregistered.status).toBe(200);
    expect(unregistered.headers.location).toBeUndefined();
    expect(unregistered.body).toContain('You signed out');

    // Entra's rule: any registered redirect URI, and nothing else on the app's own origin either
    // (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc, sign-out request).
    const redirectUriItself = await browser.send(logout(redirectUri));
    expect(redirectUriItself.headers.location).toBe(redirectUri);
    const sameOriginUnregistered = await browser.send(logout('https://app.example/elsewhere'));
    expect(sameOriginUnregistered.headers.location).toBeUndefined();
  });

  it('offers its controls over HTTP to other processes', async () => {
    const admin = (method: string, path: string, body?: unknown) =>
      send(`${emulator.origin}/_emulator/${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const { code, verifier } = await authorize({ user: bob, scopes: [READ] });
    const tokens = JSON.parse((await redeemWithHttp(code, verifier)).body) as Record<
      string,
      string
    >;
    const refreshToken = tokens.refresh_token ?? '';

    expect((await admin('POST', 'counters/reset')).status).toBe(204);
    expect(
      (await admin('POST', 'faults', { kind: 'token_5xx', retryAfterSeconds: 1, count: 1 })).status,
    ).toBe(204);
    const unavailable = await refreshWithHttp(refreshToken);
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers['retry-after']).toBe('1');
    expect(JSON.parse(unavailable.body)).toMatchObject({ error: 'temporarily_unavailable' });
    expect((await refreshWithHttp(refreshToken)).status).toBe(200);
    expect(JSON.parse((await admin('GET', 'counters')).body)).toMatchObject({
      token: { refresh_token: 2 },
    });

    expect((await admin('POST', 'faults', { kind: 'delay', ms: 1, oid: bob.oid })).status).toBe(
      204,
    );
    expect((await admin('DELETE', 'faults')).status).toBe(204);
    expect((await admin('POST', 'faults', { kind: 'unknown' })).status).toBe(400);
    expect((await admin('POST', 'lifetimes', { accessTokenSeconds: 0 })).status).toBe(400);
    const lifetimes = await admin('POST', 'lifetimes', { accessTokenSeconds: 3600 });
    expect(JSON.parse(lifetimes.body)).toMatchObject({ accessTokenSeconds: 3600 });

    const users = JSON.parse((await admin('GET', 'users')).body) as {
      oid: string;
      grants: { clientId: string; apiScopes: Record<string, string> }[];
    }[];
    expect(users.find((user) => user.oid === bob.oid)?.grants).toContainEqual({
      clientId: webApp.clientId,
      // Tenant-wide consent: the grant holds every scope of the API.
      apiScopes: { [`api://${apiClientId}`]: `${READ} ${READ_WRITE}` },
    });

    const revoked = await admin('POST', `users/${bob.oid}/revoke`);
    expect(JSON.parse(revoked.body)).toMatchObject({ revokedGrants: expect.any(Number) as number });
    const afterRevocation = await refreshWithHttp(refreshToken);
    expect(afterRevocation.status).toBe(400);
    expect(JSON.parse(afterRevocation.body)).toMatchObject({ error: 'invalid_grant' });
    expect((await admin('POST', `users/${randomUUID()}/revoke`)).status).toBe(404);
  });
  it.each([
    ['refresh_invalid_grant', 50173, 'bad_token'],
    ['refresh_expired', 700082, 'bad_token'],
    ['refresh_session_expired', 70043, 'bad_token'],
    ['refresh_mfa_required', 50076, 'basic_action'],
    ['refresh_mfa_registration_required', 50079, 'additional_action'],
  ] as const)(
    'answers the %s fault as Entra: invalid_grant AADSTS%i, suberror %s, which MSAL raises as InteractionRequiredAuthError',
    async (kind, code, suberror) => {
      const { client, account } = await signIn({ user: bob, scopes: [READ] });
      const refreshToken = refreshTokenOf(client) ?? '';
      emulator.setFault({ kind, oid: bob.oid, count: 1 });
      const raw = await refreshWithHttp(refreshToken);
      expect(raw.status).toBe(400);
      expectEntraErrorBody(raw, code, 'invalid_grant');
      expect(JSON.parse(raw.body)).toMatchObject({ suberror });

      emulator.setFault({ kind, oid: bob.oid, count: 1 });
      const error = await failure(
        client.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true }),
      );
      expect(error).toBeInstanceOf(InteractionRequiredAuthError);
      expect(error).toMatchObject({
        errorCode: 'invalid_grant',
        subError: suberror,
        errorNo: code,
      });
      // A failed request changes nothing at the emulator: the refresh token still works.
      expect((await refreshWithHttp(refreshToken)).status).toBe(200);
    },
  );

  it('sends its own refusals (a wrong secret, a used code) in Entra’s error shape', async () => {
    const { code, verifier } = await authorize({ user: alice, scopes: [READ] });
    expect((await redeemWithHttp(code, verifier)).status).toBe(200);
    const replayed = await redeemWithHttp(code, verifier);
    expectEntraErrorBody(replayed, 70000, 'invalid_grant');

    const wrongSecret = await send(`${emulator.origin}/${emulator.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: 'x',
        client_id: webApp.clientId,
        client_secret: 'wrong',
      }).toString(),
    });
    expect(wrongSecret.status).toBe(401);
    expectEntraErrorBody(wrongSecret, 7000215, 'invalid_client');

    emulator.setFault({ kind: 'client_secret_expired', count: 1 });
    const expired = await refreshWithHttp('x');
    expect(expired.status).toBe(401);
    expectEntraErrorBody(expired, 7000222, 'invalid_client');
  });

  it('fails like an Entra outage: 500 server_error, 503 HTML, 429 empty with Retry-After', async () => {
    const { client, account } = await signIn({ user: alice, scopes: [READ] });
    const refreshToken = refreshTokenOf(client) ?? '';

    emulator.setFault({ kind: 'server_error', count: 1 });
    const serverError = await refreshWithHttp(refreshToken);
    expect(serverError.status).toBe(500);
    expectEntraErrorBody(serverError, 90036, 'server_error');

    emulator.setFault({ kind: 'html_503', retryAfterSeconds: 30, count: 1 });
    const html = await refreshWithHttp(refreshToken);
    expect(html.status).toBe(503);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.headers['retry-after']).toBe('30');

    emulator.setFault({ kind: 'throttled', retryAfterSeconds: 120, count: 1 });
    const throttled = await refreshWithHttp(refreshToken);
    expect(throttled.status).toBe(429);
    expect(throttled.body).toBe('');
    expect(throttled.headers['retry-after']).toBe('120');

    // msal-node 7's own (fetch-based) network client: a 500 JSON error is a ServerError with no
    // status (msal-common RefreshTokenClient passes only the body to validateTokenResponse); a
    // non-JSON answer is token_parsing_error (msal-node network/HttpClient.ts sendRequest).
    // A new client object each time: MSAL throttles one that got a 429 or 5xx (ThrottlingUtils).
    const silent = () => {
      const withOwnNetwork = new ConfidentialClientApplication({
        auth: {
          clientId: webApp.clientId,
          clientSecret: webApp.clientSecret,
          authority: emulator.authority,
          knownAuthorities: [new URL(emulator.origin).host],
        },
      });
      withOwnNetwork.getTokenCache().deserialize(client.getTokenCache().serialize());
      return withOwnNetwork.acquireTokenSilent({ account, scopes: [READ], forceRefresh: true });
    };
    emulator.setFault({ kind: 'server_error', count: 1 });
    const asServerError = await failure(silent());
    expect(asServerError).toBeInstanceOf(ServerError);
    expect(asServerError).toMatchObject({ errorCode: 'server_error', errorNo: 90036 });
    expect((asServerError as ServerError).status).toBeUndefined();
    for (const kind of ['html_503', 'throttled'] as const) {
      emulator.setFault({ kind, count: 1 });
      expect(await failure(silent())).toMatchObject({ errorCode: 'token_parsing_error' });
    }
    await expect(silent()).resolves.toMatchObject({ fromCache: false });
  });

  it('holds a request under the hang fault until the fault is cleared, serving others meanwhile', async () => {
    const first = await signIn({ user: alice, scopes: [READ] });
    const second = await signIn({ user: bob, scopes: [READ] });
    emulator.setFault({ kind: 'hang', oid: alice.oid });
    let settled = false;
    const held = refreshWithHttp(refreshTokenOf(first.client) ?? '').finally(() => {
      settled = true;
    });
    expect((await refreshWithHttp(refreshTokenOf(second.client) ?? '')).status).toBe(200);
    expect(settled).toBe(false);
    emulator.clearFaults();
    expect((await held).status).toBe(200);
  });

  it('closes at once with a request held by the hang fault', async () => {
    const own = await startEntraEmulator({ clients: [webApp], api: { clientId: apiClientId } });
    const held = new Promise<string>((resolve) => {
      const outgoing = request(
        `${own.origin}/${own.tenantId}/oauth2/v2.0/token`,
        {
          method: 'POST',
          ca: own.caCertPem,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
        () => resolve('answered'),
      );
      outgoing.on('error', () => resolve('closed'));
      own.setFault({ kind: 'hang' });
      outgoing.end('grant_type=refresh_token&refresh_token=x');
    });
    // The request has reached the emulator once it is counted as pending under the fault.
    await expect.poll(() => own.pendingTokenRequests()).toBe(1);
    await own.close();
    expect(await held).toBe('closed');
  });

  it('issues only the optional claims a user has, and 24-hour refresh tokens to one-time-passcode users', async () => {
    const [phone, emailOnly, passcode] = emulator.users.slice(2) as [
      EmulatorUser,
      EmulatorUser,
      EmulatorUser,
    ];
    const phoneClaims = (await signIn({ user: phone, scopes: [READ] })).result.idTokenClaims;
    expect(phoneClaims).toMatchObject({ oid: phone.oid, name: 'Phone Person' });
    for (const claim of ['preferred_username', 'email', 'login_hint']) {
      expect(phoneClaims).not.toHaveProperty(claim);
    }
    const mailClaims = (await signIn({ user: emailOnly, scopes: [READ] })).result.idTokenClaims;
    expect(mailClaims).toMatchObject({ email: 'mail-only@contoso.example' });
    expect(mailClaims).not.toHaveProperty('preferred_username');
    expect(mailClaims).not.toHaveProperty('name');
    expect(mailClaims).toHaveProperty('login_hint');

    const expiryOf = async (user: EmulatorUser) => {
      const listed = JSON.parse((await send(`${emulator.origin}/_emulator/users`)).body) as {
        oid: string;
        refreshTokenExpiresAt?: string;
      }[];
      const at = listed.find((entry) => entry.oid === user.oid)?.refreshTokenExpiresAt;
      return (Date.parse(at ?? '') - Date.now()) / 1000;
    };
    await signIn({ user: passcode, scopes: [READ] });
    expect(await expiryOf(passcode)).toBeGreaterThan(24 * 3600 - 60);
    expect(await expiryOf(passcode)).toBeLessThanOrEqual(24 * 3600);
    await signIn({ user: alice, scopes: [READ] });
    expect(await expiryOf(alice)).toBeGreaterThan(89 * 24 * 3600);
    emulator.setLifetimes({ oneTimePasscodeRefreshTokenSeconds: 600 });
    await signIn({ user: passcode, scopes: [READ] }).finally(() =>
      emulator.setLifetimes({ oneTimePasscodeRefreshTokenSeconds: 24 * 3600 }),
    );
    expect(await expiryOf(passcode)).toBeLessThanOrEqual(600);
  });
});
