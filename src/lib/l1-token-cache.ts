/** What the L1 keeps of MSAL's answer. */
export interface L1Token {
  readonly accessToken: string;
  readonly expiresOn: Date | null;
  /** When the IdP asked for a refresh ahead of expiry (`refresh_in`), if it did. */
  readonly refreshOn?: Date | undefined;
}

export interface L1TokenCacheOptions {
  /** Bound on what the entries hold, counted as token characters plus a fixed cost per entry. */
  readonly maxBytes?: number;
  /** MSAL renews a token this long before it expires (its `tokenRenewalOffsetSeconds`, 300 s). */
  readonly renewalOffsetMs?: number;
  readonly now?: () => number;
}

interface UserEntry {
  /** The ETag of the user's row every token here came from. */
  readonly etag: string;
  readonly tokens: Map<string, { readonly token: L1Token; readonly servableUntil: number }>;
  bytes: number;
}

/** Keys, dates and map slots of one token: a generous flat estimate, so the bound holds. */
const ENTRY_OVERHEAD_BYTES = 512;
/** An access token this large is not kept (Entra's are 1-3 KB; group-laden ones can be far more). */
const MAX_TOKEN_CHARS = 16 * 1024;
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
const MSAL_RENEWAL_OFFSET_MS = 300_000;

/**
 * The in-memory L1 in front of the Table token cache: per user and scopes, the access token MSAL
 * last returned, tied to the ETag of the user's row it came from. It answers only for a request
 * that read the row with that same ETag, so a refresh or a sign-out on any instance (each writes
 * or removes the row) retires it at once, and only while MSAL would still serve that token from its
 * cache rather than renew it. A hit skips decrypting the row and building an MSAL client; the
 * request still makes its one Table read. Bounded in bytes; the least recently used user goes first.
 */
export class L1TokenCache {
  private readonly maxBytes: number;
  private readonly renewalOffsetMs: number;
  private readonly now: () => number;
  /** Insertion order is recency: a hit moves the user to the end. */
  private readonly users = new Map<string, UserEntry>();
  private totalBytes = 0;

  constructor(options: L1TokenCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.renewalOffsetMs = options.renewalOffsetMs ?? MSAL_RENEWAL_OFFSET_MS;
    this.now = options.now ?? Date.now;
  }

  /** Bytes held, as counted against `maxBytes`. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The token for these scopes if the user's row still has `etag` and the token is not due for renewal. */
  get(partitionKey: string, scopeKey: string, etag: string): L1Token | undefined {
    const user = this.users.get(partitionKey);
    if (user === undefined) return undefined;
    if (user.etag !== etag) {
      this.forget(partitionKey);
      return undefined;
    }
    const entry = user.tokens.get(scopeKey);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.servableUntil) {
      user.tokens.delete(scopeKey);
      this.release(user, entry.token);
      if (user.tokens.size === 0) this.users.delete(partitionKey);
      return undefined;
    }
    this.users.delete(partitionKey);
    this.users.set(partitionKey, user);
    return entry.token;
  }

  /** Keeps MSAL's answer for the user's row as it stood at `etag` (the row read, or as this request wrote it). */
  set(partitionKey: string, scopeKey: string, etag: string, token: L1Token): void {
    const servableUntil = this.servableUntil(token);
    if (servableUntil === undefined || token.accessToken.length > MAX_TOKEN_CHARS) return;
    let user = this.users.get(partitionKey);
    if (user !== undefined && user.etag !== etag) {
      this.forget(partitionKey);
      user = undefined;
    }
    if (user === undefined) {
      user = { etag, tokens: new Map(), bytes: 0 };
    } else {
      this.users.delete(partitionKey);
      const previous = user.tokens.get(scopeKey);
      if (previous !== undefined) this.release(user, previous.token);
    }
    this.users.set(partitionKey, user);
    // A copy of the three fields, not MSAL's whole result (account, ID token and claims).
    const kept: L1Token = {
      accessToken: token.accessToken,
      expiresOn: token.expiresOn,
      refreshOn: token.refreshOn,
    };
    user.tokens.set(scopeKey, { token: kept, servableUntil });
    const bytes = sizeOf(token);
    user.bytes += bytes;
    this.totalBytes += bytes;
    this.evictBeyondBound();
  }

  /** Drops everything kept for the user: at sign-out, and before a forced refresh. */
  forget(partitionKey: string): void {
    const user = this.users.get(partitionKey);
    if (user === undefined) return;
    this.users.delete(partitionKey);
    this.totalBytes -= user.bytes;
  }

  private servableUntil(token: L1Token): number | undefined {
    if (token.expiresOn === null) return undefined;
    const renewal = token.expiresOn.getTime() - this.renewalOffsetMs;
    const until =
      token.refreshOn === undefined ? renewal : Math.min(renewal, token.refreshOn.getTime());
    return until > this.now() ? until : undefined;
  }

  private release(user: UserEntry, token: L1Token): void {
    const bytes = sizeOf(token);
    user.bytes -= bytes;
    this.totalBytes -= bytes;
  }

  private evictBeyondBound(): void {
    for (const partitionKey of this.users.keys()) {
      if (this.totalBytes <= this.maxBytes) return;
      this.forget(partitionKey);
    }
  }
}

function sizeOf(token: L1Token): number {
  return token.accessToken.length + ENTRY_OVERHEAD_BYTES;
}
