import type { Cookie, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import {
  canonicalClaimsRequest,
  claimsDigest,
  claimsFromSignInParameter,
  claimsSignInParameter,
  MAX_CLAIMS_REQUEST_BYTES,
} from '../../src/lib/auth/claims-request.ts';
import type { Session } from '../../src/lib/auth/session-store.ts';
import { UserInteractionRequiredError } from '../../src/lib/errors.ts';
import { SIGN_IN_COOKIES_BUDGET, SignInTooLargeError } from '../../src/lib/auth/sign-in-flow.ts';
import {
  CLAIMS_SIGN_IN_LOOP_WINDOW_MS,
  ClaimsChallengeError,
  claimsChallengeOf,
  claimsSignInResponse,
} from '../../src/lib/proxy/claims-challenge.ts';
import { signInNeededResponse } from '../../src/lib/proxy/sign-in-needed.ts';
import { signInFlowWithFakes } from '../support/sign-in-flow-fakes.ts';

// Microsoft's examples (https://learn.microsoft.com/entra/identity-platform/claims-challenge):
// base64 with padding of {"access_token":{"acrs":{"essential":true,"value":"cp1"}}}, and of c1.
const DOCS_CHALLENGE_CP1 =
  'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiY3AxIn19fQ=="';
const DOCS_CLAIMS_C1 =
  'eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19';
const C1 = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}';

describe('claims challenges in WWW-Authenticate', () => {
  it('reads Microsoft\'s documented challenges (claims-challenge "Claims challenge header format")', () => {
    expect(claimsChallengeOf(DOCS_CHALLENGE_CP1)).toBe(
      '{"access_token":{"acrs":{"essential":true,"value":"cp1"}}}',
    );
    expect(
      claimsChallengeOf(
        `Bearer realm="", authorization_uri="https://idp/authorize", error="insufficient_claims", claims="${DOCS_CLAIMS_C1}"`,
      ),
    ).toBe(C1);
    // Parameter names are case-insensitive; base64url is taken too.
    expect(
      claimsChallengeOf(
        `bearer ERROR="insufficient_claims", Claims="${Buffer.from(C1).toString('base64url')}"`,
      ),
    ).toBe(C1);
  });

  it('ignores anything that is not an insufficient_claims Bearer challenge with a claims request', () => {
    const claims = Buffer.from(C1).toString('base64');
    for (const header of [
      undefined,
      'Bearer',
      'Bearer error="invalid_token"',
      `Bearer error="invalid_token", claims="${claims}"`,
      'Bearer error="insufficient_claims"',
      `Basic realm="x", error="insufficient_claims", claims="${claims}"`,
      `Bearer error="insufficient_claims", claims="${Buffer.from('[1,2]').toString('base64')}"`,
      `Bearer error="insufficient_claims", claims="${Buffer.from('{"access_token":1}').toString('base64')}"`,
      `Bearer error="insufficient_claims", claims="not base64!"`,
      `Bearer error="insufficient_claims", claims="${Buffer.from(`{"access_token":{"x":"${'a'.repeat(MAX_CLAIMS_REQUEST_BYTES)}"}}`).toString('base64')}"`,
      `Bearer error="insufficient_claims", claims="${'A'.repeat(5000)}"`,
    ]) {
      expect(claimsChallengeOf(header), String(header)).toBeUndefined();
    }
  });
});

describe('the claims of /auth/signin', () => {
  it('takes base64url of a JSON object of objects, in its one canonical spelling', () => {
    expect(claimsFromSignInParameter(claimsSignInParameter(C1))).toBe(C1);
    // Re-serialized: spaces and key order as JSON.stringify keeps them.
    expect(canonicalClaimsRequest('{ "access_token" : { "acrs" : {"value":"c1"} } }')).toBe(
      '{"access_token":{"acrs":{"value":"c1"}}}',
    );
  });

  it('refuses padding, base64 characters, stray bits, bad UTF-8, non-objects and oversized requests', () => {
    const encoded = claimsSignInParameter(C1);
    for (const value of [
      '',
      `${encoded}==`,
      Buffer.from(C1).toString('base64').replace(/=+$/, '') + '+/',
      `${encoded.slice(0, -1)}${encoded.endsWith('Q') ? 'R' : 'Q'}`,
      Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url'),
      Buffer.from('null').toString('base64url'),
      Buffer.from('{}').toString('base64url'),
      Buffer.from('{"access_token":"c1"}').toString('base64url'),
      Buffer.from('{"access_token":{}').toString('base64url'),
      Buffer.from(`{"access_token":{"x":"${'a'.repeat(MAX_CLAIMS_REQUEST_BYTES)}"}}`).toString(
        'base64url',
      ),
    ]) {
      expect(claimsFromSignInParameter(value), value).toBeUndefined();
    }
  });
});

describe('a claims challenge that needs the user', () => {
  const session = (digest: string | undefined, createdAt: number) => ({
    signInClaimsDigest: digest,
    createdAt: new Date(createdAt),
  });

  it('offers a sign-in carrying the claims, unless this session just signed in with them', () => {
    const now = Date.UTC(2026, 0, 1);
    const offered = claimsSignInResponse(C1, session(undefined, now), 'notes', now);
    expect(offered.status).toBe(401);
    const body = JSON.parse(offered.body as string) as { loginUrl: string };
    const url = new URL(body.loginUrl, 'https://app.example');
    expect(url.pathname).toBe('/auth/signin');
    expect(claimsFromSignInParameter(url.searchParams.get('claims') ?? '')).toBe(C1);

    const looping = claimsSignInResponse(C1, session(claimsDigest(C1), now - 1000), 'notes', now);
    expect(looping.status).toBe(401);
    const refused = JSON.parse(looping.body as string) as Record<string, unknown>;
    expect(refused.loginUrl).toBeUndefined();
    expect(refused.title).toBe('The API keeps refusing');

    // Other claims, or the same claims long after that sign-in: a new step-up.
    const other = '{"access_token":{"acrs":{"essential":true,"value":"c2"}}}';
    for (const answer of [
      claimsSignInResponse(other, session(claimsDigest(C1), now - 1000), 'notes', now),
      claimsSignInResponse(
        C1,
        session(claimsDigest(C1), now - CLAIMS_SIGN_IN_LOOP_WINDOW_MS),
        'notes',
        now,
      ),
    ]) {
      expect(JSON.parse(answer.body as string)).toHaveProperty('loginUrl');
    }
  });
});

describe('SignInFlow with claims', () => {
  function flow() {
    const { flow: signIn, asked, redeemed, created } = signInFlowWithFakes();
    return { signIn, asked, redeemed, created };
  }

  const jarOf = (cookies: Cookie[]) =>
    new Map(cookies.filter((c) => c.maxAge !== 0).map((c) => [c.name, c.value]));

  it('passes the claims to the authorize request and the code redemption, and the session keeps their digest', async () => {
    const { signIn, asked, redeemed, created } = flow();
    const started = await signIn.start('/', undefined, new Map(), C1);
    expect(asked[0]?.claims).toBe(C1);
    await signIn.complete(
      { code: 'code', state: String(asked[0]?.state), error: null },
      jarOf(started.cookies),
      undefined,
    );
    expect(redeemed[0]?.claims).toBe(C1);
    expect(created[0]).toEqual({ claimsDigest: claimsDigest(C1) });

    // Without claims: none sent, none kept.
    const plain = await signIn.start('/', undefined, new Map());
    expect(asked[1]).not.toHaveProperty('claims');
    await signIn.complete(
      { code: 'code', state: String(asked[1]?.state), error: null },
      jarOf(plain.cookies),
      undefined,
    );
    expect(redeemed[1]).not.toHaveProperty('claims');
    expect(created[1]).toEqual({});
  });

  it('keeps the largest claims request with the longest returnTo inside the cookie budget, or refuses', async () => {
    const { signIn } = flow();
    const largest = canonicalClaimsRequest(
      `{"access_token":{"x":"${'a'.repeat(MAX_CLAIMS_REQUEST_BYTES - 25)}"}}`,
    );
    expect(largest).toBeDefined();
    const started = await signIn.start('/', undefined, new Map(), largest);
    const [cookie] = started.cookies;
    expect((cookie?.name.length ?? 0) + (cookie?.value.length ?? 0) + 3).toBeLessThanOrEqual(
      SIGN_IN_COOKIES_BUDGET,
    );
    await expect(
      signIn.start(`/${'a'.repeat(2047)}`, undefined, new Map(), largest),
    ).rejects.toBeInstanceOf(SignInTooLargeError);
  });
});

describe('signInNeededResponse with claims', () => {
  const context = { warn: () => undefined } as unknown as InvocationContext;
  const sessions = { delete: () => Promise.resolve() };
  const session = { createdAt: new Date(), signInClaimsDigest: undefined } as unknown as Session;

  it('passes claims the IdP named in an interaction_required refusal to the sign-in (msal-common InteractionRequiredAuthError.claims)', async () => {
    const named = await signInNeededResponse(
      new UserInteractionRequiredError({
        claims: '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}',
      }),
      sessions,
      session,
      undefined,
      'notes',
      context,
    );
    expect(named?.status).toBe(401);
    const loginUrl = (JSON.parse(named?.body as string) as { loginUrl: string }).loginUrl;
    expect(
      claimsFromSignInParameter(
        new URL(loginUrl, 'https://app.example').searchParams.get('claims') ?? '',
      ),
    ).toBe('{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}');

    // Claims that are no claims request are left out; the sign-in is still offered.
    const unnamed = await signInNeededResponse(
      new UserInteractionRequiredError({ claims: 'not json' }),
      sessions,
      session,
      undefined,
      'notes',
      context,
    );
    const plain = (JSON.parse(unnamed?.body as string) as { loginUrl: string }).loginUrl;
    expect(plain).toBe('/auth/signin?returnTo=%2F');
  });

  it('answers a ClaimsChallengeError with the challenge claims in the loginUrl', async () => {
    const answer = await signInNeededResponse(
      new ClaimsChallengeError(C1),
      sessions,
      session,
      undefined,
      'todos',
      context,
    );
    const loginUrl = (JSON.parse(answer?.body as string) as { loginUrl: string }).loginUrl;
    expect(
      claimsFromSignInParameter(
        new URL(loginUrl, 'https://app.example').searchParams.get('claims') ?? '',
      ),
    ).toBe(C1);
  });
});
