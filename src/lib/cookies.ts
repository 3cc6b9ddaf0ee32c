import type { Cookie, HttpRequest } from '@azure/functions';

/** The session: SameSite=Strict, so no other site can make the browser send it. */
export const SESSION_COOKIE = '__Host-bff-session';
/** Sign-in state: SameSite=Lax, so it comes back on the IdP's top-level redirect to this app. */
export const SIGN_IN_COOKIE = '__Host-bff-signin';

// Browsers keep about 4 KB a cookie: anything longer was not set by this app.
const MAX_COOKIE_VALUE = 4096;

/** Reads one cookie from the request; a missing, duplicated or oversized one reads as absent. */
export function readCookie(request: HttpRequest, name: string): string | undefined {
  const header = request.headers.get('cookie');
  if (header === null) return undefined;
  const values = header
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => pair.startsWith(`${name}=`))
    .map((pair) => pair.slice(name.length + 1));
  // Two cookies of one name mean one was planted (e.g. by a sibling subdomain): trust neither.
  if (values.length !== 1) return undefined;
  const value = values[0] as string;
  return value.length === 0 || value.length > MAX_COOKIE_VALUE ? undefined : value;
}

/** A cookie with the attributes every cookie of this app carries (`__Host-` rules). */
export function hostCookie(
  name: string,
  value: string,
  sameSite: 'Strict' | 'Lax',
  maxAgeSeconds: number,
): Cookie {
  return { name, value, path: '/', secure: true, httpOnly: true, sameSite, maxAge: maxAgeSeconds };
}

/** Tells the browser to drop a cookie. */
export function expiredCookie(name: string, sameSite: 'Strict' | 'Lax'): Cookie {
  return hostCookie(name, '', sameSite, 0);
}
