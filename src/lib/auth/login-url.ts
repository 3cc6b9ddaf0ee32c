import { claimsSignInParameter } from './claims-request';
import { safeReturnTo } from './return-to';

/**
 * This app's sign-in route, coming back to `returnTo` (a same-origin path) afterwards; with
 * `claims`, the claims request (JSON, already checked) the sign-in asks the IdP for.
 */
export function loginUrl(returnTo: string | null | undefined, claims?: string): string {
  const query = new URLSearchParams({ returnTo: safeReturnTo(returnTo) });
  if (claims !== undefined) query.set('claims', claimsSignInParameter(claims));
  return `/auth/signin?${query.toString()}`;
}
