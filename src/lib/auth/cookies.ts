import type { Cookie, HttpRequest } from '@azure/functions';

/** The session: SameSite=Strict, so no other site can make the browser send it. */
export const SESSION_COOKIE = '__Host-bff-session';
/**
 * Sign-in state, one cookie per sign-in in progress (`__Host-bff-signin-<tag>`), so sign-ins started
 * in several tabs do not overwrite each other. SameSite=Lax, so it comes back on the IdP's top-level
 * redirect to this app.
 */
export const SIGN_IN_COOKIE_PREFIX = '__Host-bff-signin-';

// Browsers keep about 4 KB a cookie: anything longer was not set by this app.
const MAX_COOKIE_VALUE = 4096;

/** The request's cookies as name/value pairs, in header order (repeats kept). */
function cookiePairs(request: HttpRequest): [string, string][] {
  const header = request.headers.get('cookie');
  if (header === null) return [];
  return header
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => pair.includes('='))
    .map((pair) => {
      const separator = pair.indexOf('=');
      return [pair.slice(0, separator), pair.slice(separator + 1)];
    });
}

function usableValue(values: readonly string[]): string | undefined {
  // Two cookies of one name mean one was planted (e.g. by a sibling subdomain): trust neither.
  if (values.length !== 1) return undefined;
  const value = values[0] as string;
  return value.length === 0 || value.length > MAX_COOKIE_VALUE ? undefined : value;
}

/**
 * Reads one cookie from the request; a missing, duplicated or oversized one reads as absent. On
 * every proxied call: one pass over the header, no array of every cookie.
 */
export function readCookie(request: HttpRequest, name: string): string | undefined {
  const header = request.headers.get('cookie');
  if (header === null) return undefined;
  let found: string | undefined;
  let start = 0;
  while (start <= header.length) {
    const end = header.indexOf(';', start);
    const pair = header.slice(start, end === -1 ? header.length : end).trim();
    const separator = pair.indexOf('=');
    if (separator !== -1 && pair.slice(0, separator) === name) {
      if (found !== undefined) return undefined;
      found = pair.slice(separator + 1);
    }
    if (end === -1) break;
    start = end + 1;
  }
  return found === undefined ? undefined : usableValue([found]);
}

/**
 * Every cookie whose name starts with `prefix`, by name; duplicated or oversized ones are left
 * out, as `readCookie` reads them as absent.
 */
export function readCookiesWithPrefix(request: HttpRequest, prefix: string): Map<string, string> {
  const byName = new Map<string, string[]>();
  for (const [name, value] of cookiePairs(request)) {
    if (name.startsWith(prefix)) byName.set(name, [...(byName.get(name) ?? []), value]);
  }
  const usable = new Map<string, string>();
  for (const [name, values] of byName) {
    const value = usableValue(values);
    if (value !== undefined) usable.set(name, value);
  }
  return usable;
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
