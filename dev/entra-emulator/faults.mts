/** Which token requests a fault applies to: at most `count` of them, and only `oid`'s if given. */
interface FaultScope {
  count?: number;
  oid?: string;
}

/**
 * Failures injected into the token endpoint:
 * - `refresh_invalid_grant`: 400 invalid_grant with suberror bad_token (MSAL:
 *   InteractionRequiredAuthError) for refresh_token grants;
 * - `refresh_invalid_grant_plain`: 400 invalid_grant without suberror (MSAL: ServerError);
 * - `token_5xx`: a 5xx answer (503 by default) with Retry-After, for any grant;
 * - `delay`: `ms` milliseconds before the answer, for any grant.
 */
export type Fault = FaultScope &
  (
    | { kind: 'refresh_invalid_grant' }
    | { kind: 'refresh_invalid_grant_plain' }
    | { kind: 'token_5xx'; status?: number; retryAfterSeconds?: number }
    | { kind: 'delay'; ms: number }
  );

export type FailureFault = Exclude<Fault, { kind: 'delay' }>;

export interface TokenRequest {
  grantType: string;
  /** The user the request is for, when the library got far enough to know. */
  oid: string | undefined;
}

export interface FaultDecision {
  delayMs: number;
  failure: FailureFault | undefined;
}

const kinds = new Set<string>([
  'refresh_invalid_grant',
  'refresh_invalid_grant_plain',
  'token_5xx',
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
        retryAfterSeconds: integer('retryAfterSeconds', retryAfterSeconds, 1, 3600),
      };
    default:
      return { kind: kind as 'refresh_invalid_grant' | 'refresh_invalid_grant_plain', ...scope };
  }
}

/** The active faults, at most one of each kind, applied in the order they were set. */
export class FaultInjector {
  #active: { fault: Fault; remaining: number }[] = [];

  set(fault: Fault): void {
    const valid = parseFault(fault);
    this.#active = this.#active.filter((active) => active.fault.kind !== valid.kind);
    this.#active.push({ fault: valid, remaining: valid.count ?? Infinity });
  }

  clear(): void {
    this.#active = [];
  }

  /** Picks the faults for a request and uses up one of each picked fault's count. */
  take(request: TokenRequest): FaultDecision {
    const decision: FaultDecision = { delayMs: 0, failure: undefined };
    for (const active of this.#active) {
      const { fault } = active;
      if (fault.oid !== undefined && fault.oid.toLowerCase() !== request.oid?.toLowerCase()) {
        continue;
      }
      if (fault.kind === 'delay') {
        decision.delayMs += fault.ms;
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
}

function appliesTo(fault: FailureFault, grantType: string): boolean {
  return fault.kind === 'token_5xx' || grantType === 'refresh_token';
}
