import { createHash } from 'node:crypto';

/**
 * The largest claims request the app passes on, as canonical JSON. Entra's claims challenges are
 * far smaller (`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` is 57 bytes; a
 * continuous-access-evaluation `nbf` challenge about 70), and the request travels sealed in the
 * sign-in cookie, within its budget (sign-in-flow.ts `SIGN_IN_COOKIES_BUDGET`).
 */
export const MAX_CLAIMS_REQUEST_BYTES = 1024;

const BASE64URL = /^[A-Za-z0-9_-]+$/;
// A challenge's `claims` is base64 with padding in Microsoft's examples; base64url is taken too.
const BASE64_EITHER = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * A claims request (the OpenID Connect `claims` parameter, which Entra also takes at its token
 * endpoint) as canonical JSON: a JSON object whose members are objects (`access_token`,
 * `id_token`, ...), at most MAX_CLAIMS_REQUEST_BYTES. Undefined for anything else. It is only ever
 * passed to MSAL as the `claims` value, which MSAL encodes as one parameter: it cannot add others.
 */
export function canonicalClaimsRequest(text: string): string | undefined {
  if (Buffer.byteLength(text, 'utf8') > MAX_CLAIMS_REQUEST_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(parsed) || Object.keys(parsed).length === 0) return undefined;
  if (!Object.values(parsed).every(isPlainObject)) return undefined;
  const canonical = JSON.stringify(parsed);
  return Buffer.byteLength(canonical, 'utf8') <= MAX_CLAIMS_REQUEST_BYTES ? canonical : undefined;
}

/** The `claims` of `/auth/signin`: base64url (no padding) of a claims request; else undefined. */
export function claimsFromSignInParameter(value: string): string | undefined {
  if (!BASE64URL.test(value) || value.length > Math.ceil((MAX_CLAIMS_REQUEST_BYTES * 4) / 3)) {
    return undefined;
  }
  const bytes = Buffer.from(value, 'base64url');
  // Only the one canonical spelling: no stray trailing bits.
  if (bytes.toString('base64url') !== value) return undefined;
  return decodeUtf8(bytes);
}

/** The `claims` of a `WWW-Authenticate` challenge: base64 or base64url of a claims request. */
export function claimsFromChallengeParameter(value: string): string | undefined {
  if (
    !BASE64_EITHER.test(value) ||
    value.length > Math.ceil((MAX_CLAIMS_REQUEST_BYTES * 4) / 3) + 2
  ) {
    return undefined;
  }
  return decodeUtf8(Buffer.from(value.replace(/=+$/, ''), 'base64url'));
}

/** How a claims request travels in `/auth/signin?claims=`. */
export function claimsSignInParameter(claims: string): string {
  return Buffer.from(claims, 'utf8').toString('base64url');
}

/** A short digest of a claims request: what a session remembers of the claims it signed in with. */
export function claimsDigest(claims: string): string {
  return createHash('sha256')
    .update(`claims-request/v1:${claims}`)
    .digest('base64url')
    .slice(0, 22);
}

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return canonicalClaimsRequest(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
