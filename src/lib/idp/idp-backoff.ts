import type { IdpUnavailableError } from '../errors';

interface Hold {
  /** Epoch ms until which no token request of this user goes out. */
  readonly until: number;
  /** A request is on its way after the hold ended: the one probe. */
  probing: boolean;
}

// Users held at once in one process: beyond this the oldest hold is dropped (a probe, no more).
const MAX_HELD_USERS = 10_000;

/**
 * Honours the IdP's `Retry-After` per user, in this process: while it runs, that user's token
 * requests are held back (the caller answers 503 with the time left) and, once it has run, one
 * request probes the IdP while the user's others are still held. Other users are not affected:
 * Entra throttles per client and user, and MSAL's own throttling lives in a client object this
 * app makes per request.
 */
export class IdpBackoff {
  private readonly holds = new Map<string, Hold>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Whether a token request for this user may go out now; if not, the seconds left. */
  enter(
    user: string,
  ): { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number } {
    const hold = this.holds.get(user);
    if (hold === undefined) return { allowed: true };
    const left = hold.until - this.now();
    if (left > 0) return { allowed: false, retryAfterSeconds: Math.ceil(left / 1000) };
    if (hold.probing) return { allowed: false, retryAfterSeconds: 1 };
    hold.probing = true;
    return { allowed: true };
  }

  succeeded(user: string): void {
    this.holds.delete(user);
  }

  /** After a request that went out failed: an outage with Retry-After holds the user again. */
  failed(user: string, outage: IdpUnavailableError | undefined): void {
    const seconds = outage?.retryAfterSeconds;
    if (seconds === undefined || seconds <= 0) {
      this.holds.delete(user);
      return;
    }
    this.holds.delete(user);
    if (this.holds.size >= MAX_HELD_USERS) {
      const oldest = this.holds.keys().next().value;
      if (oldest !== undefined) this.holds.delete(oldest);
    }
    this.holds.set(user, { until: this.now() + seconds * 1000, probing: false });
  }
}
