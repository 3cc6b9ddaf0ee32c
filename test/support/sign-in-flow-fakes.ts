import { randomBytes } from 'node:crypto';
import type { SessionStore } from '../../src/lib/auth/session-store.ts';
import { SignInFlow } from '../../src/lib/auth/sign-in-flow.ts';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import type { TokenService } from '../../src/lib/tokens/token-service.ts';

export const SIGN_IN_SETTINGS = {
  redirectUri: 'http://localhost:7071/auth/redirect',
  scopes: ['api://x/ToDoList.Read'],
};

/**
 * A SignInFlow over a fake token service and session store that record what they were asked:
 * the authorize requests, the code redemptions and the options of each session created.
 */
export function signInFlowWithFakes(
  options: { now?: () => number; redemptionFailure?: Error | undefined } = {},
) {
  const asked: Record<string, unknown>[] = [];
  const redeemed: Record<string, unknown>[] = [];
  const created: unknown[] = [];
  const tokenService = {
    authCodeUrl: (request: Record<string, unknown>) => {
      asked.push(request);
      return Promise.resolve('https://idp.example/authorize');
    },
    redeemCode: (request: Record<string, unknown>) => {
      redeemed.push(request);
      return options.redemptionFailure === undefined
        ? Promise.resolve({ homeAccountId: 'oid.tid', username: 'ada@contoso.example' })
        : Promise.reject(options.redemptionFailure);
    },
  } as unknown as TokenService;
  const sessions = {
    delete: () => Promise.resolve(),
    create: (_user: unknown, sessionOptions: unknown) => {
      created.push(sessionOptions);
      return Promise.resolve({ cookieValue: 'session', maxAgeSeconds: 60 });
    },
  } as unknown as SessionStore;
  const flow = new SignInFlow(
    SIGN_IN_SETTINGS,
    tokenService,
    sessions,
    new KeyRing([randomBytes(32)]),
    options.now,
  );
  return { flow, asked, redeemed, created };
}
