import { safeReturnTo } from './return-to';

/** This app's sign-in route, coming back to `returnTo` (a same-origin path) afterwards. */
export function loginUrl(returnTo: string | null | undefined): string {
  const query = new URLSearchParams({ returnTo: safeReturnTo(returnTo) });
  return `/auth/signin?${query.toString()}`;
}
