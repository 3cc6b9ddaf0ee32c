const BASE = 'https://app.invalid';
const MAX_LENGTH = 2048;

/**
 * The path to send the browser to after sign-in: a same-origin relative path (with its query), or
 * `/` for anything that could leave the app: `//host`, `/\host`, schemes, encoded slashes or
 * backslashes, control characters.
 */
export function safeReturnTo(raw: string | null | undefined): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_LENGTH) return '/';
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\')) return '/';
  if (/\p{Cc}/u.test(raw) || /%(2f|5c|00)/i.test(raw)) return '/';
  let url: URL;
  try {
    url = new URL(raw, BASE);
  } catch {
    return '/';
  }
  if (url.origin !== BASE) return '/';
  // Percent-encoding can grow the input several times over; the result must still fit in the
  // sign-in cookie (browsers keep about 4 KB a cookie).
  // Dot segments fold away only now (`/.//host` becomes `//host`), so the result is checked again.
  const path = `${url.pathname}${url.search}`;
  return path.length > MAX_LENGTH || path.startsWith('//') ? '/' : path;
}
