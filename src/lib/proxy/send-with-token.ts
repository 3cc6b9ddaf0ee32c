import type { Session } from '../auth/session-store';
import type { TokenService } from '../tokens/token-service';

/**
 * Sends one API call with the user's access token for `scopes`, and once more with a refreshed
 * token when the API answers 401: it may reject a token the cache still holds as valid (revoked,
 * keys rolled). The first attempt uses the token-cache row read with the session; the retry reads
 * it afresh, as the first attempt may have written it.
 */
export async function sendWithToken<T extends { readonly status: number }>(
  tokenService: Pick<TokenService, 'acquireToken'>,
  session: Session,
  scopes: readonly string[],
  send: (accessToken: string) => Promise<T>,
): Promise<T> {
  const attempt = async (forceRefresh: boolean): Promise<T> => {
    const token = await tokenService.acquireToken(session.homeAccountId, [...scopes], {
      forceRefresh,
      ...(forceRefresh ? {} : { tokenCacheRow: session.tokenCacheRow }),
    });
    return send(token.accessToken);
  };
  const first = await attempt(false);
  return first.status === 401 ? attempt(true) : first;
}
