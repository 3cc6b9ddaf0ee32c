import {
  ConfidentialClientApplication,
  CryptoProvider,
  InteractionRequiredAuthError,
  type AccountInfo,
} from '@azure/msal-node';
import { decodeJwt } from 'jose';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEntraEmulator, type EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { createMsalNetworkClient } from '../../dev/entra-emulator/msal-network-client.mts';
import { EmulatorBrowser, sendTrusting, type HttpsAnswer } from '../support/emulator-browser.ts';
import { testStack } from '../support/stack.ts';

// The emulator's `claims` request parameter against real msal-node 7 with the `cp1` capability:
// https://learn.microsoft.com/entra/identity-platform/claims-challenge and
// https://learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context.
const webApp = {
  clientId: 'c1a1c1a1-4b1f-4c8e-9e21-7f6b5a4c3d2e',
  clientSecret: 'claims-test-secret',
  redirectUris: ['https://app.example/auth/redirect'],
};
const redirectUri = 'https://app.example/auth/redirect';
const apiClientId = 'c1a1c1a1-b1a0-4f9e-8d7c-6b5a4f3e2d1c';
const READ = `api://${apiClientId}/ToDoList.Read`;
const WRITE = `api://${apiClientId}/ToDoList.ReadWrite`;
const STEP_UP_C1 = JSON.stringify({ access_token: { acrs: { essential: true, value: 'c1' } } });
const STEP_UP_C2 = JSON.stringify({ access_token: { acrs: { essential: true, values: ['c2'] } } });
const user = { oid: 'c1a1c1a1-2b1d-4e8a-9f47-1a2b3c4d5e01', name: 'Cora Claims' };

let emulator: EntraEmulator;

/** An HTTPS request that trusts the emulator's CA. */
function send(url: string, init?: Parameters<typeof sendTrusting>[2]): Promise<HttpsAnswer> {
  return sendTrusting(emulator.caCertPem, url, init);
}

function newClient(): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: {
      clientId: webApp.clientId,
      clientSecret: webApp.clientSecret,
      authority: emulator.authority,
      knownAuthorities: [new URL(emulator.origin).host],
      clientCapabilities: ['cp1'],
    },
    system: { networkClient: createMsalNetworkClient(emulator.caCertPem) },
  });
}

/** One authorization-code sign-in as the app runs it; `claims` on both requests when given. */
async function signIn(
  client: ConfidentialClientApplication,
  browser: EmulatorBrowser,
  options: { claims?: string; loginHint?: string },
) {
  const pkce = await new CryptoProvider().generatePkceCodes();
  const state = randomUUID();
  const nonce = randomUUID();
  const url = await client.getAuthCodeUrl({
    scopes: [READ],
    redirectUri,
    codeChallenge: pkce.challenge,
    codeChallengeMethod: 'S256',
    state,
    nonce,
    ...(options.loginHint === undefined ? {} : { loginHint: options.loginHint }),
    ...(options.claims === undefined ? {} : { claims: options.claims }),
  });
  let landed = await browser.follow(url);
  const shownSignInPage = landed.page.status === 200 && landed.url.includes('/login/');
  if (shownSignInPage) landed = await browser.follow(landed.url, { oid: user.oid });
  const code = new URL(landed.url).searchParams.get('code') ?? '';
  const result = await client.acquireTokenByCode(
    {
      code,
      scopes: [READ],
      redirectUri,
      codeVerifier: pkce.verifier,
      state,
      nonce,
      ...(options.claims === undefined ? {} : { claims: options.claims }),
    },
    { code, state },
  );
  return { result, account: result.account as AccountInfo, shownSignInPage, authorizeUrl: url };
}

beforeAll(async () => {
  emulator = await startEntraEmulator({
    certDir: dirname(testStack().emulator.caCertPath),
    clients: [webApp],
    api: { clientId: apiClientId },
    users: [user],
  });
});

afterAll(async () => {
  await emulator?.close();
});

describe('Entra emulator: the claims request parameter', () => {
  it('puts xms_cc from the cp1 capability into access tokens (msal-common RequestParameterBuilder buildMergedClaims; optional claims reference "xms_cc")', async () => {
    const { result, authorizeUrl } = await signIn(newClient(), new EmulatorBrowser(emulator), {
      loginHint: user.oid,
    });
    // msal-common sends the merged claims on the authorize request too.
    const claims = JSON.parse(new URL(authorizeUrl).searchParams.get('claims') ?? '{}') as {
      access_token?: { xms_cc?: { values?: string[] } };
    };
    expect(claims.access_token?.xms_cc?.values).toEqual(['cp1']);
    const token = decodeJwt(result.accessToken);
    expect(token.xms_cc).toEqual(['cp1']);
    expect(token.acrs).toBeUndefined();
  });

  it('a refresh asking for an auth context the sign-in did not satisfy is invalid_grant AADSTS50076 basic_action with claims; a step-up sign-in satisfies it (claims-challenge, CA auth context guide)', async () => {
    const client = newClient();
    const browser = new EmulatorBrowser(emulator);
    const first = await signIn(client, browser, { loginHint: user.oid });

    const refused = await client
      .acquireTokenSilent({ account: first.account, scopes: [READ], claims: STEP_UP_C1 })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(InteractionRequiredAuthError);
    expect(refused).toMatchObject({ errorCode: 'invalid_grant', subError: 'basic_action' });
    expect(JSON.parse((refused as InteractionRequiredAuthError).claims)).toEqual({
      access_token: { acrs: { essential: true, values: ['c1'] } },
    });

    // The browser is signed in at the emulator, yet the step-up shows the sign-in page.
    const stepUp = await signIn(client, browser, { claims: STEP_UP_C1 });
    expect(stepUp.shownSignInPage).toBe(true);
    const stepped = decodeJwt(stepUp.result.accessToken);
    expect(stepped.acrs).toEqual(['c1']);
    expect(stepped.xms_cc).toEqual(['cp1']);

    // Its refresh token now redeems with those claims, for another scope too.
    const refreshed = await client.acquireTokenSilent({
      account: stepUp.account,
      scopes: [WRITE],
      claims: STEP_UP_C1,
    });
    expect(refreshed.fromCache).toBe(false);
    expect(decodeJwt(refreshed.accessToken).acrs).toEqual(['c1']);
    // Without claims, a refresh gives no acrs: it is there only when asked for.
    const plain = await client.acquireTokenSilent({
      account: stepUp.account,
      scopes: [WRITE],
      forceRefresh: true,
    });
    expect(decodeJwt(plain.accessToken).acrs).toBeUndefined();
    // An auth context the step-up did not ask for is still refused.
    await expect(
      client.acquireTokenSilent({ account: stepUp.account, scopes: [READ], claims: STEP_UP_C2 }),
    ).rejects.toMatchObject({ errorCode: 'invalid_grant', subError: 'basic_action' });
  });

  it('answers malformed claims at the token endpoint with invalid_request AADSTS50117 (reference-error-codes)', async () => {
    const response = await send(`${emulator.origin}/${emulator.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: 'not-a-token',
        client_id: webApp.clientId,
        client_secret: webApp.clientSecret,
        scope: READ,
        claims: '{"access_token":',
      }).toString(),
    });
    expect(response.status).toBe(400);
    const body = JSON.parse(response.body) as { error: string; error_codes: number[] };
    expect(body.error).toBe('invalid_request');
    expect(body.error_codes).toEqual([50117]);
  });
});
