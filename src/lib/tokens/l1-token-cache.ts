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

/** A session as its row was last read, kept until `servableUntil` (by the caller's clock). */
export interface L1SessionEntry<TSession> {
  readonly session: TSession;
  readonly servableUntil: number;
  /** The user's token-cache row was read with it, so the tokens kept here are as recent. */
  readonly withTokenRow: boolean;
  /** What the caller counts it as against the bound. */
  readonly bytes: number;
}

interface UserEntry<TSession> {
  /** The ETag of the user's row every token here came from; undefined: no token kept. */
  etag: string | undefined;
  readonly tokens: Map<string, { readonly token: L1Token; readonly servableUntil: number }>;
  /** By session row key. */
  readonly sessions: Map<string, L1SessionEntry<TSession>>;
  bytes: number;
}

/** Keys, dates and map slots of one token: a generous flat estimate, so the bound holds. */
const ENTRY_OVERHEAD_BYTES = 512;
/** An access token this large is not kept (Entra's are 1-3 KB; group-laden ones can be far more). */
const MAX_TOKEN_CHARS = 16 * 1024;
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
const MSAL_RENEWAL_OFFSET_MS = 300_000;

/**
 * The in-memory L1 in front of the token table, per user: the access tokens MSAL last returned
 * (per scope set, tied to the ETag of the user's token-cache row they came from, and only while
 * MSAL would still serve them rather than renew), and the user's sessions as their rows were last
 * read. The session store serves a session from here until the time it set (at most
 * SESSION_RECHECK_SECONDS after the read), and the token service then serves the token with no
 * Table read at all; otherwise a request reads the rows and a token is served only when the row
 * read has the ETag it came from.
 *
 * Every change this instance makes (sign-out, a session ended, tokens deleted) forgets the user's
 * entries at once, and moves `epoch` on: an answer read before that must not be kept, so whoever
 * keeps one passes the epoch it read at. Bounded in bytes, sessions and tokens together; the least
 * recently used user goes first.
 */
export class L1TokenCache<TSession = unknown> {
  private readonly maxBytes: number;
  private readonly renewalOffsetMs: number;
  private readonly now: () => number;
  /** Insertion order is recency: a hit moves the user to the end. */
  private readonly users = new Map<string, UserEntry<TSession>>();
  private totalBytes = 0;
  private invalidations = 0;

  constructor(options: L1TokenCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.renewalOffsetMs = options.renewalOffsetMs ?? MSAL_RENEWAL_OFFSET_MS;
    this.now = options.now ?? Date.now;
  }

  /** Bytes held, as counted against `maxBytes`. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Moves on at every invalidation: pass the value read before a Table read to `set…`. */
  get epoch(): number {
    return this.invalidations;
  }

  /**
   * The token for these scopes, if not due for renewal and, given `etag`, if the user's row still
   * has it (a row that changed drops the user's tokens). Without `etag` the caller vouches that
   * this instance's knowledge of the row is recent enough (a session served from memory).
   */
  get(partitionKey: string, scopeKey: string, etag?: string): L1Token | undefined {
    const user = this.users.get(partitionKey);
    if (user === undefined) return undefined;
    if (etag !== undefined) this.observeRow(partitionKey, etag);
    const entry = user.tokens.get(scopeKey);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.servableUntil) {
      user.tokens.delete(scopeKey);
      this.release(partitionKey, user, sizeOf(entry.token));
      return undefined;
    }
    this.touch(partitionKey, user);
    return entry.token;
  }

  /** The user's token-cache row as just read (undefined: it has none): tokens of another version go. */
  observeRow(partitionKey: string, etag: string | undefined): void {
    const user = this.users.get(partitionKey);
    if (user !== undefined && user.etag !== undefined && user.etag !== etag) {
      this.forgetTokens(partitionKey);
    }
  }

  /**
   * Keeps MSAL's answer for the user's row as it stood at `etag` (the row read, or as this request
   * wrote it), unless something was invalidated since `epoch`.
   */
  set(
    partitionKey: string,
    scopeKey: string,
    etag: string,
    token: L1Token,
    epoch = this.invalidations,
  ): void {
    if (epoch !== this.invalidations) return;
    const servableUntil = this.servableUntil(token);
    if (servableUntil === undefined || token.accessToken.length > MAX_TOKEN_CHARS) return;
    if (this.users.get(partitionKey)?.etag !== etag) this.forgetTokens(partitionKey);
    const user = this.entryFor(partitionKey);
    user.etag = etag;
    const previous = user.tokens.get(scopeKey);
    if (previous !== undefined) this.release(partitionKey, user, sizeOf(previous.token));
    // A copy of the three fields, not MSAL's whole result (account, ID token and claims).
    const kept: L1Token = {
      accessToken: token.accessToken,
      expiresOn: token.expiresOn,
      refreshOn: token.refreshOn,
    };
    user.tokens.set(scopeKey, { token: kept, servableUntil });
    this.hold(user, sizeOf(kept));
  }

  /** The session kept under this row key while `now` is before its `servableUntil`. */
  getSession(
    partitionKey: string,
    rowKey: string,
    withTokenRow: boolean,
    now: number,
  ): TSession | undefined {
    const user = this.users.get(partitionKey);
    const entry = user?.sessions.get(rowKey);
    if (user === undefined || entry === undefined) return undefined;
    if (now >= entry.servableUntil) {
      user.sessions.delete(rowKey);
      this.release(partitionKey, user, entry.bytes);
      return undefined;
    }
    if (withTokenRow && !entry.withTokenRow) return undefined;
    this.touch(partitionKey, user);
    return entry.session;
  }

  /** Keeps a session as just read, unless something was invalidated since `epoch`. */
  setSession(
    partitionKey: string,
    rowKey: string,
    entry: L1SessionEntry<TSession>,
    epoch: number,
  ): void {
    if (epoch !== this.invalidations) return;
    const user = this.entryFor(partitionKey);
    const previous = user.sessions.get(rowKey);
    if (previous !== undefined) this.release(partitionKey, user, previous.bytes);
    user.sessions.set(rowKey, entry);
    this.hold(user, entry.bytes);
  }

  /** Drops one session (it ended here, or its row is gone). */
  forgetSession(partitionKey: string, rowKey: string): void {
    this.invalidations += 1;
    const user = this.users.get(partitionKey);
    const entry = user?.sessions.get(rowKey);
    if (user === undefined || entry === undefined) return;
    user.sessions.delete(rowKey);
    this.release(partitionKey, user, entry.bytes);
  }

  /** Drops every session of the user, keeping the tokens (those go with the row). */
  forgetSessions(partitionKey: string): void {
    this.invalidations += 1;
    const user = this.users.get(partitionKey);
    if (user === undefined) return;
    for (const [rowKey, entry] of user.sessions) {
      user.sessions.delete(rowKey);
      this.release(partitionKey, user, entry.bytes);
    }
  }

  /** Drops the user's tokens: before a forced refresh, or when their row changed. */
  forgetTokens(partitionKey: string): void {
    const user = this.users.get(partitionKey);
    if (user === undefined) return;
    for (const [scopeKey, entry] of user.tokens) {
      user.tokens.delete(scopeKey);
      this.release(partitionKey, user, sizeOf(entry.token));
    }
    user.etag = undefined;
  }

  /** Drops everything kept for the user: at sign-out, and when their tokens are deleted. */
  forget(partitionKey: string): void {
    this.invalidations += 1;
    const user = this.users.get(partitionKey);
    if (user === undefined) return;
    this.users.delete(partitionKey);
    this.totalBytes -= user.bytes;
  }

  private entryFor(partitionKey: string): UserEntry<TSession> {
    let user = this.users.get(partitionKey);
    if (user === undefined) {
      user = { etag: undefined, tokens: new Map(), sessions: new Map(), bytes: 0 };
      this.users.set(partitionKey, user);
    } else {
      this.touch(partitionKey, user);
    }
    return user;
  }

  private touch(partitionKey: string, user: UserEntry<TSession>): void {
    this.users.delete(partitionKey);
    this.users.set(partitionKey, user);
  }

  private servableUntil(token: L1Token): number | undefined {
    if (token.expiresOn === null) return undefined;
    const renewal = token.expiresOn.getTime() - this.renewalOffsetMs;
    const until =
      token.refreshOn === undefined ? renewal : Math.min(renewal, token.refreshOn.getTime());
    return until > this.now() ? until : undefined;
  }

  private hold(user: UserEntry<TSession>, bytes: number): void {
    user.bytes += bytes;
    this.totalBytes += bytes;
    for (const [partitionKey, oldest] of this.users) {
      if (this.totalBytes <= this.maxBytes) return;
      this.users.delete(partitionKey);
      this.totalBytes -= oldest.bytes;
    }
  }

  private release(partitionKey: string, user: UserEntry<TSession>, bytes: number): void {
    user.bytes -= bytes;
    this.totalBytes -= bytes;
    if (user.tokens.size === 0) user.etag = undefined;
    if (user.tokens.size === 0 && user.sessions.size === 0) this.users.delete(partitionKey);
  }
}

function sizeOf(token: L1Token): number {
  return token.accessToken.length + ENTRY_OVERHEAD_BYTES;
}
