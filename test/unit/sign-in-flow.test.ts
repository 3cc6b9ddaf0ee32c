import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/lib/key-ring.ts';
import type { SessionStore } from '../../src/lib/session-store.ts';
import { SignInFailedError, SignInFlow } from '../../src/lib/sign-in-flow.ts';
import type { TokenService } from '../../src/lib/token-service.ts';

const settings = {
  redirectUri: 'http://localhost:7071/auth/redirect',
  readScope: 'api://x/ToDoList.Read',
  readWriteScope: 'api://x/ToDoList.ReadWrite',
};

function flowAt(clock: { now: number }) {
  const asked: Record<string, unknown>[] = [];
  const tokenService = {
    authCodeUrl: (request: Record<string, unknown>) => {
      asked.push(request);
      return Promise.resolve('https://idp.example/authorize');
    },
    redeemCode: () => Promise.reject(new Error('not reached')),
  } as unknown as TokenService;
  const flow = new SignInFlow(
    settings,
    tokenService,
    {} as SessionStore,
    new KeyRing([randomBytes(32)]),
    () => clock.now,
  );
  return { flow, asked };
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
    const started = await flow.start('/later', undefined);
    const state = String(asked[0]?.state);
    clock.now += 10 * 60 * 1000 + 1000;
    const failure = await failureOf(
      flow.complete({ code: 'c', state, error: null }, started.cookies[0]?.value, undefined),
    );
    expect(failure.failure).toBe('expired_state');
    expect(failure.returnTo).toBe('/later');
  });

  it('asks for the write scope only when consent=readwrite is asked for', async () => {
    const { flow, asked } = flowAt({ now: Date.now() });
    await flow.start('/', undefined);
    await flow.start('/', 'readwrite');
    expect(asked.map((request) => request.scopes)).toEqual([
      ['openid', 'profile', 'offline_access', settings.readScope],
      ['openid', 'profile', 'offline_access', settings.readWriteScope],
    ]);
  });

  it('passes a plausible login hint on and drops an implausible one', async () => {
    const { flow, asked } = flowAt({ now: Date.now() });
    await flow.start('/', undefined, 'ada@contoso.example');
    await flow.start('/', undefined, 'a b\r\nc');
    expect(asked.map((request) => request.loginHint)).toEqual(['ada@contoso.example', undefined]);
  });

  it('refuses a sign-in cookie sealed by another deployment', async () => {
    const { flow: other, asked } = flowAt({ now: Date.now() });
    const foreign = await other.start('/', undefined);
    const { flow } = flowAt({ now: Date.now() });
    const failure = await failureOf(
      flow.complete(
        { code: 'c', state: String(asked[0]?.state), error: null },
        foreign.cookies[0]?.value,
        undefined,
      ),
    );
    expect(failure.failure).toBe('missing_state');
  });
});
