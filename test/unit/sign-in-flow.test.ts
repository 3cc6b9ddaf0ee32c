import { createHash } from 'node:crypto';
import type { Cookie } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import {
  AdminConsentRequiredError,
  ClientCredentialRejectedError,
  IdpUnavailableError,
  SignInRequiredError,
} from '../../src/lib/errors.ts';
import {
  MAX_PENDING_SIGN_INS,
  SIGN_IN_COOKIES_BUDGET,
  SignInFailedError,
} from '../../src/lib/auth/sign-in-flow.ts';
import { SIGN_IN_SETTINGS, signInFlowWithFakes } from '../support/sign-in-flow-fakes.ts';

/** A SignInFlow whose clock is `clock.now`, over fakes that record what they were asked. */
function flowAt(clock: { now: number }, redemptionFailure?: Error) {
  const { flow, asked, redeemed } = signInFlowWithFakes({
    now: () => clock.now,
    redemptionFailure,
  });
  return { flow, asked, redeemed };
}

const challengeOf = (verifier: unknown) =>
  createHash('sha256').update(String(verifier)).digest('base64url');

/** The cookies a response leaves in the browser (name to value), given what it had before. */
function cookiesOf(
  response: { cookies: Cookie[] },
  before: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const jar = new Map(before);
  for (const cookie of response.cookies) {
    if (cookie.maxAge === 0) jar.delete(cookie.name);
    else jar.set(cookie.name, cookie.value);
  }
  return jar;
}

async function failureOf(promise: Promise<unknown>): Promise<SignInFailedError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SignInFailedError);
  return error as SignInFailedError;
}

describe('SignInFlow', () => {
  it('expires the sign-in state after ten minutes', async () => {
    const clock = { now: Date.UTC(2026, 0, 1) };
    const { flow, asked } = flowAt(clock);
    const started = await flow.start('/later');
    const state = String(asked[0]?.state);
    clock.now += 10 * 60 * 1000 + 1000;
    const failure = await failureOf(
      flow.complete({ code: 'c', state, error: null }, cookiesOf(started), undefined),
    );
    expect(failure.failure).toBe('expired_state');
    expect(failure.returnTo).toBe('/later');
  });

  it('asks for the same scopes at every sign-in: consent is tenant-wide, nothing more to ask', async () => {
    const { flow, asked } = flowAt({ now: Date.now() });
    await flow.start('/');
    await flow.start('/todos');
    expect(asked.map((request) => request.scopes)).toEqual([
      ['openid', 'profile', 'offline_access', ...SIGN_IN_SETTINGS.scopes],
      ['openid', 'profile', 'offline_access', ...SIGN_IN_SETTINGS.scopes],
    ]);
  });

  it.each([
    [new ClientCredentialRejectedError(), 'client_credential_rejected'],
    [new AdminConsentRequiredError(), 'admin_consent_missing'],
    [new SignInRequiredError('refresh_rejected'), 'code_rejected'],
  ] as const)('fails a redemption refused with %s as %s', async (refusal, expected) => {
    const { flow, asked } = flowAt({ now: Date.now() }, refusal);
    const started = await flow.start('/');
    const failure = await failureOf(
      flow.complete(
        { code: 'c', state: String(asked[0]?.state), error: null },
        cookiesOf(started),
        undefined,
      ),
    );
    expect(failure.failure).toBe(expected);
  });

  it('lets an IdP outage at redemption through, for a "try again" answer', async () => {
    const outage = new IdpUnavailableError(undefined, { retryAfterSeconds: 30 });
    const { flow, asked } = flowAt({ now: Date.now() }, outage);
    const started = await flow.start('/');
    await expect(
      flow.complete(
        { code: 'c', state: String(asked[0]?.state), error: null },
        cookiesOf(started),
        undefined,
      ),
    ).rejects.toBe(outage);
  });

  it('passes a plausible login hint on and drops an implausible one', async () => {
    const { flow, asked } = flowAt({ now: Date.now() });
    await flow.start('/', 'ada@contoso.example');
    await flow.start('/', 'a b\r\nc');
    expect(asked.map((request) => request.loginHint)).toEqual(['ada@contoso.example', undefined]);
  });

  it('refuses a sign-in cookie sealed by another deployment', async () => {
    const { flow: other, asked } = flowAt({ now: Date.now() });
    const foreign = await other.start('/');
    const { flow } = flowAt({ now: Date.now() });
    const failure = await failureOf(
      flow.complete(
        { code: 'c', state: String(asked[0]?.state), error: null },
        cookiesOf(foreign),
        undefined,
      ),
    );
    expect(failure.failure).toBe('missing_state');
  });

  it('completes three sign-ins of one browser in reverse order, each with its own state, nonce and verifier', async () => {
    const clock = { now: Date.UTC(2026, 0, 1) };
    const { flow, asked, redeemed } = flowAt(clock);
    let jar = new Map<string, string>();
    for (const returnTo of ['/one', '/two', '/three']) {
      jar = cookiesOf(await flow.start(returnTo, undefined, jar), jar);
      clock.now += 1000;
    }
    expect(jar.size).toBe(3);
    const landed: string[] = [];
    for (const index of [2, 1, 0]) {
      const request = asked[index] ?? {};
      const completed = await flow.complete(
        { code: `code-${index}`, state: String(request.state), error: null },
        jar,
        undefined,
      );
      jar = cookiesOf(completed, jar);
      landed.push(completed.returnTo);
      const redemption = redeemed.at(-1) ?? {};
      expect(redemption.state).toBe(request.state);
      expect(redemption.nonce).toBe(request.nonce);
      expect(challengeOf(redemption.codeVerifier)).toBe(request.codeChallenge);
    }
    expect(landed).toEqual(['/three', '/two', '/one']);
    expect([...jar.keys()]).toEqual(['__Host-bff-session']);
    expect(new Set(asked.map((request) => request.state)).size).toBe(3);
    expect(new Set(asked.map((request) => request.nonce)).size).toBe(3);
  });

  it('keeps the five newest of ten sign-ins, within the cookie budget', async () => {
    const clock = { now: Date.UTC(2026, 0, 1) };
    const { flow, asked } = flowAt(clock);
    let jar = new Map<string, string>();
    for (let index = 0; index < 10; index += 1) {
      jar = cookiesOf(await flow.start(`/tab/${index}`, undefined, jar), jar);
      clock.now += 1000;
    }
    expect(jar.size).toBe(MAX_PENDING_SIGN_INS);
    const header = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    expect(header.length).toBeLessThanOrEqual(SIGN_IN_COOKIES_BUDGET);
    const outcomes: string[] = [];
    for (const request of asked) {
      const outcome = await flow
        .complete({ code: 'c', state: String(request.state), error: null }, jar, undefined)
        .then(
          (completed) => completed.returnTo,
          (error: SignInFailedError) => error.failure,
        );
      outcomes.push(outcome);
    }
    expect(outcomes).toEqual([
      ...Array<string>(5).fill('state_mismatch'),
      '/tab/5',
      '/tab/6',
      '/tab/7',
      '/tab/8',
      '/tab/9',
    ]);
  });

  it('drops older sign-ins sooner when long return paths would pass the cookie budget', async () => {
    const { flow } = flowAt({ now: Date.now() });
    let jar = new Map<string, string>();
    for (let index = 0; index < 4; index += 1) {
      jar = cookiesOf(await flow.start(`/${'a'.repeat(1500)}`, undefined, jar), jar);
    }
    const bytes = [...jar].reduce((sum, [name, value]) => sum + name.length + value.length + 3, 0);
    expect(bytes).toBeLessThanOrEqual(SIGN_IN_COOKIES_BUDGET);
    expect(jar.size).toBe(1);
  });

  it('clears expired and foreign sign-in cookies when a new sign-in starts', async () => {
    const clock = { now: Date.UTC(2026, 0, 1) };
    const { flow } = flowAt(clock);
    const jar = cookiesOf(await flow.start('/old', undefined));
    const [oldName = ''] = [...jar.keys()];
    jar.set('__Host-bff-signin-AAAAAAAAAAAAAAAA', Buffer.alloc(80, 1).toString('base64url'));
    clock.now += 10 * 60 * 1000;
    const started = await flow.start('/new', undefined, jar);
    const cleared = started.cookies.filter((cookie) => cookie.maxAge === 0);
    expect(new Set(cleared.map((cookie) => cookie.name))).toEqual(
      new Set([oldName, '__Host-bff-signin-AAAAAAAAAAAAAAAA']),
    );
    expect(cookiesOf(started, jar).size).toBe(1);
  });

  it("refuses one sign-in's sealed state copied under another sign-in's cookie name", async () => {
    const { flow, asked } = flowAt({ now: Date.now() });
    let jar = cookiesOf(await flow.start('/a', undefined));
    jar = cookiesOf(await flow.start('/b', undefined, jar), jar);
    const [[firstName = '', firstValue = ''] = [], [secondName = ''] = []] = [...jar];
    const swapped = new Map([[secondName, firstValue]]);
    const failure = await failureOf(
      flow.complete({ code: 'c', state: String(asked[1]?.state), error: null }, swapped, undefined),
    );
    expect(failure.failure).toBe('missing_state');
    expect(firstName).not.toBe(secondName);
  });

  it("clears only the failed sign-in's cookie", async () => {
    const { flow, asked } = flowAt({ now: Date.now() });
    let jar = cookiesOf(await flow.start('/a', undefined));
    jar = cookiesOf(await flow.start('/b', undefined, jar), jar);
    const failure = await failureOf(
      flow.complete(
        { code: null, state: String(asked[0]?.state), error: 'access_denied' },
        jar,
        undefined,
      ),
    );
    expect(failure.failure).toBe('idp_error');
    expect(failure.returnTo).toBe('/a');
    expect(cookiesOf(failure, jar).size).toBe(1);
  });
});
