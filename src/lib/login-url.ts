import { safeReturnTo } from './return-to';

/** Extra consent the sign-in asks for: `readwrite` adds the API's write scope (incremental consent). */
export type ConsentRequest = 'readwrite';

/** This app's sign-in route, coming back to `returnTo` (a same-origin path) afterwards. */
export function loginUrl(returnTo: string | null | undefined, consent?: ConsentRequest): string {
  const query = new URLSearchParams({ returnTo: safeReturnTo(returnTo) });
  if (consent !== undefined) query.set('consent', consent);
  return `/auth/signin?${query.toString()}`;
}
