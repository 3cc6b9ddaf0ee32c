/**
 * The `claims` request parameter as Entra reads it, at the authorize and the token endpoint
 * (https://learn.microsoft.com/entra/identity-platform/claims-challenge "Claims request"; OpenID
 * Connect Core 5.5): a JSON object whose `access_token` member may ask for
 * - `acrs`, Conditional Access authentication context ids, as `{"essential":true,"value":"c1"}` or
 *   `"values":["c1","c2"]` (https://learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context);
 * - `xms_cc`, the client's capabilities, `{"values":["cp1"]}`, which msal-common adds from the app's
 *   `clientCapabilities` (msal-common request/RequestParameterBuilder.ts `buildMergedClaims`).
 */
export type ClaimsRequest = Record<string, unknown>;

/** The parsed request; `malformed` for text that is not a JSON object (AADSTS50117 at Entra). */
export function parseClaimsRequest(
  text: string | null | undefined,
): ClaimsRequest | 'malformed' | undefined {
  if (text === null || text === undefined || text === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : 'malformed';
  } catch {
    return 'malformed';
  }
}

/** The auth context ids a claims request asks for in access tokens (`essentialOnly`: the essential ones). */
export function requestedAcrs(claims: unknown, essentialOnly = false): string[] {
  const acrs = accessTokenMember(claims, 'acrs');
  if (acrs === undefined || (essentialOnly && acrs.essential !== true)) return [];
  const values = [
    ...(typeof acrs.value === 'string' ? [acrs.value] : []),
    ...(Array.isArray(acrs.values)
      ? acrs.values.filter((v): v is string => typeof v === 'string')
      : []),
  ];
  return [...new Set(values)];
}

/** The client capabilities (`xms_cc` values, e.g. `cp1`) a claims request declares. */
export function clientCapabilities(claims: unknown): string[] {
  const member = accessTokenMember(claims, 'xms_cc');
  const values = member?.values;
  return Array.isArray(values) ? values.filter((v): v is string => typeof v === 'string') : [];
}

function accessTokenMember(claims: unknown, name: string): Record<string, unknown> | undefined {
  if (!isObject(claims)) return undefined;
  const accessToken = claims.access_token;
  if (!isObject(accessToken)) return undefined;
  const member = accessToken[name];
  return isObject(member) ? member : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
