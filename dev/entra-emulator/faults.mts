/** Which token requests a fault applies to: at most `count` of them, and only `oid`'s if given. */
interface FaultScope {
  count?: number;
  oid?: string;
}

/**
 * Failures injected into the token endpoint (and, for `admin_consent_missing`, the authorize
 * endpoint), each answered the way Entra answers it (see `entraFailure` in token-endpoint.mts for
 * the bodies and their sources). Refresh faults apply to refresh_token grants only; the others to
 * every grant.
 * - `refresh_invalid_grant`: AADSTS50173, the grant was revoked (password changed, admin revoked):
 *   invalid_grant, suberror bad_token;
 * - `refresh_expired`: AADSTS700082, the refresh token expired from inactivity (bad_token);
 * - `refresh_session_expired`: AADSTS70043, Conditional Access sign-in frequency (bad_token);
 * - `refresh_invalid_grant_plain`: AADSTS70000, invalid_grant without suberror;
 * - `refresh_mfa_required`: AADSTS50076, MFA needed: invalid_grant, suberror basic_action;
 * - `refresh_mfa_registration_required`: AADSTS50079, MFA registration: additional_action;
 * - `admin_consent_missing`: AADSTS65001 at the token endpoint (invalid_grant, consent_required)
 *   and the admin-approval page at the authorize endpoint;
 * - `client_secret_expired`: AADSTS7000222, 401 invalid_client;
 * - `server_error`: 500 JSON server_error, AADSTS90036;
 * - `token_5xx`: JSON temporarily_unavailable (503 by default);
 * - `html_503`: 503 with an HTML body (a front end's error page);
 * - `throttled`: 429 with an empty body (what a client looping on the token endpoint gets;
 *   AADSTS50196);
 * each of the last three with `Retry-After` when `retryAfterSeconds` is given;
 * - `hang`: accepts the request and never answers, until the fault is cleared or the emulator
 *   closes;
 * - `delay`: `ms` milliseconds before the answer.
 */
export type Fault = FaultScope &
  (
    | { kind: RefreshFaultKind }
    | { kind: 'admin_consent_missing' }
    | { kind: 'client_secret_expired' }
    | { kind: 'server_error' }
    | { kind: 'token_5xx'; status?: number; retryAfterSeconds?: number }
    | { kind: 'html_503'; retryAfterSeconds?: number }
    | { kind: 'throttled'; retryAfterSeconds?: number }
    | { kind: 'hang' }
    | { kind: 'delay'; ms: number }
  );

export const refreshFaultKinds = [
  'refresh_invalid_grant',
  'refresh_expired',
  'refresh_session_expired',
  'refresh_invalid_grant_plain',
  'refresh_mfa_required',
  'refresh_mfa_registration_required',
] as const;
export type RefreshFaultKind = (typeof refreshFaultKinds)[number];

export type FailureFault = Exclude<Fault, { kind: 'delay' } | { kind: 'hang' }>;

export interface TokenRequest {
  grantType: string;
  /** The user the request is for, when the emulator could tell from the code or refresh token. */
  oid: string | undefined;
}

export interface FaultDecision {
  delayMs: number;
  /** Present when a `hang` fault took the request: resolves once the fault is cleared or replaced. */
  hang: Promise<void> | undefined;
  failure: FailureFault | undefined;
}

const kinds = new Set<string>([
  ...refreshFaultKinds,
  'admin_consent_missing',
  'client_secret_expired',
  'server_error',
  'token_5xx',
  'html_503',
  'throttled',
  'hang',
  'delay',
]);

/** Validates a fault from untrusted input (the admin API); throws a TypeError naming the problem. */
export function parseFault(input: unknown): Fault {
  if (typeof input !== 'object' || input === null) throw new TypeError('a fault is a JSON object');
  const { kind, count, oid, status, retryAfterSeconds, ms } = input as Record<string, unknown>;
  if (typeof kind !== 'string' || !kinds.has(kind)) {
    throw new TypeError(`fault kind must be one of ${[...kinds].join(', ')}`);
  }
  const integer = (name: string, value: unknown, min: number, max: number): number | undefined => {
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      throw new TypeError(`${name} must be an integer from ${min} to ${max}`);
    }
    return value as number;
  };
  if (oid !== undefined && typeof oid !== 'string') throw new TypeError('oid must be a string');
  const scope: FaultScope = { count: integer('count', count, 1, Number.MAX_SAFE_INTEGER), oid };
  const retryAfter = integer('retryAfterSeconds', retryAfterSeconds, 1, 3600);
  switch (kind) {
    case 'delay': {
      const delayMs = integer('ms', ms, 1, 600_000);
      if (delayMs === undefined) throw new TypeError('a delay fault needs ms');
      return { kind, ...scope, ms: delayMs };
    }
    case 'token_5xx':
      return {
        kind,
        ...scope,
        status: integer('status', status, 500, 599),
        retryAfterSeconds: retryAfter,
      };
    case 'html_503':
    case 'throttled':
      return { kind, ...scope, retryAfterSeconds: retryAfter };
    default:
      return { kind, ...scope } as Fault;
  }
}

interface ActiveFault {
  fault: Fault;
  remaining: number;
}

/** The active faults, at most one of each kind, applied in the order they were set. */
export class FaultInjector {
  #active: ActiveFault[] = [];
  /** Releases every request a `hang` fault holds. */
  #releaseHangs: (() => void)[] = [];

  set(fault: Fault): void {
    const valid = parseFault(fault);
    // A hang fault replaced is a hang fault cleared: the requests it held go on.
    if (valid.kind === 'hang') this.#release();
    this.#active = this.#active.filter((active) => active.fault.kind !== valid.kind);
    this.#active.push({ fault: valid, remaining: valid.count ?? Infinity });
  }

  /** Clears every fault and lets every held request go on (also at close). */
  clear(): void {
    this.#active = [];
    this.#release();
  }

  /** How many requests a `hang` fault holds right now. */
  get held(): number {
    return this.#releaseHangs.length;
  }

  /** Whether a fault of this kind is active for the user (does not use up its count). */
  isActive(kind: Fault['kind'], oid: string | undefined): boolean {
    return this.#active.some(
      (active) => active.fault.kind === kind && matchesUser(active.fault, oid),
    );
  }

  /** Picks the faults for a token request and uses up one of each picked fault's count. */
  take(request: TokenRequest): FaultDecision {
    const decision: FaultDecision = { delayMs: 0, hang: undefined, failure: undefined };
    for (const active of this.#active) {
      const { fault } = active;
      if (!matchesUser(fault, request.oid)) continue;
      if (fault.kind === 'delay') {
        decision.delayMs += fault.ms;
      } else if (fault.kind === 'hang') {
        decision.hang ??= new Promise<void>((resolve) => this.#releaseHangs.push(resolve));
      } else if (decision.failure === undefined && appliesTo(fault, request.grantType)) {
        decision.failure = fault;
      } else {
        continue;
      }
      active.remaining -= 1;
    }
    this.#active = this.#active.filter((active) => active.remaining > 0);
    return decision;
  }

  #release(): void {
    const releases = this.#releaseHangs;
    this.#releaseHangs = [];
    for (const release of releases) release();
  }
}

function matchesUser(fault: Fault, oid: string | undefined): boolean {
  return fault.oid === undefined || fault.oid.toLowerCase() === oid?.toLowerCase();
}

function appliesTo(fault: FailureFault, grantType: string): boolean {
  return (
    !(refreshFaultKinds as readonly string[]).includes(fault.kind) || grantType === 'refresh_token'
  );
}
