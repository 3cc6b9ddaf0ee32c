import type { Session } from '../auth/session-store';
import { UserInteractionRequiredError } from '../errors';
import type { AcquireOptions, TokenService } from '../tokens/token-service';
import { claimsChallengeOf, ClaimsChallengeError } from './claims-challenge';

/** What `sendWithToken` reads of an API's answer. */
export interface ApiAnswer {
  readonly status: number;
  /** Names lower-case; `www-authenticate` is read for a claims challenge. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Sends one API call with the user's access token for `scopes`, and when the API answers 401 once
 * more:
 * - with a claims challenge (`error="insufficient_claims"`, claims-challenge.ts), with a token got
 *   silently for those claims (msal-node redeems the refresh token with them); if the IdP wants
 *   the user for them, or the API challenges again, a ClaimsChallengeError;
 * - else with a refreshed token: the API may reject a token the cache still holds as valid
 *   (revoked, keys rolled).
 * The first attempt uses the token-cache row read with the session; a retry reads it afresh, as
 * the first attempt may have written it.
 */
export async function sendWithToken<T extends ApiAnswer>(
  tokenService: Pick<TokenService, 'acquireToken'>,
  session: Session,
  scopes: readonly string[],
  send: (accessToken: string) => Promise<T>,
): Promise<T> {
  const attempt = async (options: AcquireOptions): Promise<T> => {
    const token = await tokenService.acquireToken(session.homeAccountId, [...scopes], options);
    return send(token.accessToken);
  };
  const first = await attempt({ tokenCacheRow: session.tokenCacheRow });
  if (first.status !== 401) return first;
  const claims = claimsChallengeOf(first.headers['www-authenticate']);
  if (claims === undefined) return attempt({ forceRefresh: true });
  let second: T;
  try {
    second = await attempt({ claims });
  } catch (error) {
    if (error instanceof UserInteractionRequiredError) {
      throw new ClaimsChallengeError(claims, { cause: error });
    }
    throw error;
  }
  const again =
    second.status === 401 ? claimsChallengeOf(second.headers['www-authenticate']) : undefined;
  if (again !== undefined) throw new ClaimsChallengeError(again);
  return second;
}
