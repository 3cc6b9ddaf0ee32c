import type { JWTPayload } from 'jose';

/**
 * A route that needs a Conditional Access authentication context: its calls need an access token
 * whose `acrs` claim holds `acrs`, else they get a claims challenge. `always` challenges even a
 * token that has it (an API that keeps refusing, to test that a client does not loop); `oid`
 * limits the requirement to one user's calls; `path` to calls whose path starts with it.
 */
export interface ClaimsRequirement {
  acrs: string;
  path?: string;
  oid?: string;
  always?: boolean;
}

/** The requirements of an API, set by a start option or its admin surface. */
export class ClaimsRequirements {
  private readonly requirements: ClaimsRequirement[] = [];
  /** Where a client signs in interactively: the emulator's authorize endpoint. */
  private readonly authorizationUri: string;

  constructor(issuer: string, initial: readonly ClaimsRequirement[] = []) {
    // The issuer is `https://host/<tenant>/v2.0`; Entra's authorize endpoint sits beside it.
    this.authorizationUri = issuer.replace(/\/v2\.0$/, '/oauth2/v2.0/authorize');
    for (const requirement of initial) this.add(requirement);
  }

  /** Adds a requirement, replacing one for the same path and user. */
  add(value: unknown): void {
    const requirement = parseRequirement(value);
    const index = this.requirements.findIndex(
      (other) => other.path === requirement.path && other.oid === requirement.oid,
    );
    if (index >= 0) this.requirements.splice(index, 1);
    this.requirements.push(requirement);
  }

  clear(): void {
    this.requirements.length = 0;
  }

  list(): ClaimsRequirement[] {
    return structuredClone(this.requirements);
  }

  /**
   * The `WWW-Authenticate` value of a claims challenge when a verified token does not meet a
   * requirement of this path, exactly as Microsoft's docs show it: status 401,
   * `Bearer realm="", authorization_uri="...", error="insufficient_claims", claims="<base64>"`, the
   * claims being base64 (with padding) of `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
   * (https://learn.microsoft.com/entra/identity-platform/claims-challenge "Claims challenge header
   * format"; https://learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context).
   */
  challengeFor(path: string, payload: JWTPayload): string | undefined {
    const held = Array.isArray(payload.acrs) ? payload.acrs : [];
    const unmet = this.requirements.find(
      (requirement) =>
        path.startsWith(requirement.path ?? '/') &&
        (requirement.oid === undefined || requirement.oid === payload.oid) &&
        (requirement.always === true || !held.includes(requirement.acrs)),
    );
    if (unmet === undefined) return undefined;
    const claims = Buffer.from(
      JSON.stringify({ access_token: { acrs: { essential: true, value: unmet.acrs } } }),
    ).toString('base64');
    return `Bearer realm="", authorization_uri="${this.authorizationUri}", error="insufficient_claims", claims="${claims}"`;
  }
}

/** Thrown for a requirement the admin surface cannot take; its message says why. */
export class BadRequirementError extends Error {}

function parseRequirement(value: unknown): ClaimsRequirement {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequirementError('A claims requirement must be a JSON object.');
  }
  const { acrs, path, oid, always } = value as Record<string, unknown>;
  // Entra's auth context ids are c1 to c99.
  if (typeof acrs !== 'string' || !/^c[1-9][0-9]?$/.test(acrs)) {
    throw new BadRequirementError('A claims requirement needs acrs, an auth context id c1 to c99.');
  }
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw new BadRequirementError('A claims requirement path must start with /.');
  }
  if (oid !== undefined && (typeof oid !== 'string' || oid === '')) {
    throw new BadRequirementError('A claims requirement oid must be a non-empty string.');
  }
  if (always !== undefined && typeof always !== 'boolean') {
    throw new BadRequirementError('A claims requirement always must be true or false.');
  }
  return {
    acrs,
    ...(path === undefined ? {} : { path }),
    ...(oid === undefined ? {} : { oid }),
    ...(always === undefined ? {} : { always }),
  };
}
