import { createHash, randomBytes } from 'node:crypto';
import { odata } from '@azure/data-tables';
import { TokenStoreUnavailableError } from '../errors';
import { UnreadableSealError, type KeyRing } from '../tokens/key-ring';
import { L1TokenCache } from '../tokens/l1-token-cache';
import { partitionKeyOf } from '../tokens/partition-key';
import { statusOf, type TokenTable } from '../tokens/table-storage';
import {
  TOKEN_CACHE_ROW_KEY,
  type StoredEntity,
  type TokenCacheRowAsRead,
} from '../tokens/token-cache-store';
import type { SignedInUser } from '../tokens/token-service';

const SESSION_ROW_PREFIX = 'session.';
// The first key after every `session.…` key: '/' follows '.' in code-point order.
const SESSION_ROW_END = 'session/';
const COOKIE_ASSOCIATED_DATA = 'session-cookie/v1';
// Strings are counted at their length; this covers the dates, keys and map slots of one session.
const SESSION_OVERHEAD_BYTES = 1024;

export interface SessionLifetimes {
  readonly idleMinutes: number;
  readonly absoluteHours: number;
  /** How long a session read here may be served from memory (SESSION_RECHECK_SECONDS); 0 or absent: never. */
  readonly recheckSeconds?: number;
}

/** A session as the L1 keeps it between reads of its row. */
export type RememberedSession = Omit<Session, 'tokenCacheRow'>;

export interface Session {
  /** The session's public id (see `publicIdOf`): safe to show, never usable as a cookie. */
  readonly id: string;
  readonly homeAccountId: string;
  readonly name: string | undefined;
  readonly username: string;
  readonly loginHint: string | undefined;
  /** The value a sign-out form must carry, as CSRF proof. */
  readonly csrfToken: string;
  readonly createdAt: Date;
  /** When the session ends at the latest, whatever the activity. */
  readonly expiresAt: Date;
  /** When the session ends if unused. */
  readonly idleExpiresAt: Date;
  /**
   * The digest (claims-request.ts `claimsDigest`) of the claims request this session signed in
   * with, when its sign-in answered an API's claims challenge: so a challenge for the same claims
   * right after is known as one that signing in again does not meet.
   */
  readonly signInClaimsDigest?: string;
  /** With `withTokenCache`: the user's token-cache row, as read in the same query or remembered. */
  readonly tokenCacheRow?: TokenCacheRowAsRead;
}

export interface NewSession {
  readonly session: Session;
  /** The sealed reference to put in the session cookie. */
  readonly cookieValue: string;
  readonly maxAgeSeconds: number;
}

/** A live session as its user's session list shows it. */
export interface SessionSummary {
  readonly id: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date;
  /** When the session ends at the latest, whatever the activity. */
  readonly expiresAt: Date;
  /** When the session ends if unused. */
  readonly idleExpiresAt: Date;
}

interface CookieReference {
  readonly p: string;
  readonly s: string;
}

interface SessionEntity {
  Name?: string;
  Username: string;
  LoginHint?: string;
  ClaimsDigest?: string;
  Csrf: string;
  Created: Date;
  LastUsed: Date;
  ExpiresAt: Date;
}

/** The row stores a digest, so reading the table does not give anyone a usable session id. */
function rowKeyOf(sessionId: string): string {
  return SESSION_ROW_PREFIX + createHash('sha256').update(sessionId).digest('hex');
}

/** What `SessionStore` keys an opened cookie by: its digest, so no cookie is kept in memory. */
function digestOf(cookieValue: string): string {
  return createHash('sha256').update(cookieValue).digest('base64url');
}

const PUBLIC_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/**
 * The id a session is shown and ended by: a digest of its row key (itself a digest of the secret
 * session id), so it reveals nothing of the cookie, opens nothing, and names one row.
 */
function publicIdOf(rowKey: string): string {
  return createHash('sha256')
    .update(`session-public-id/v1:${rowKey}`)
    .digest('base64url')
    .slice(0, 22);
}

/**
 * How many opened session cookies a store remembers (about 300 bytes each): the sessions an
 * instance serves at once. Past it the oldest is forgotten, and opened again when it comes back.
 */
const OPENED_COOKIES = 8192;

/** The row a session cookie names. */
interface SessionRow {
  readonly partitionKey: string;
  readonly rowKey: string;
}

export interface SessionStoreOptions {
  /** The L1 the token service uses too, so a session and its token are served from memory together. */
  readonly l1?: L1TokenCache<RememberedSession>;
  readonly now?: () => number;
}

/**
 * Server-side sessions, one row each in the user's partition of the token table, so they can be
 * revoked and are served by any instance. The cookie holds only a sealed reference to the row.
 *
 * A session read here is served from the L1 for up to `recheckSeconds` (and never past the time
 * its idle deadline is due for renewal), so a steady caller makes no Table round trip; every
 * session this store ends is forgotten at once, so an end here acts here at once, and within
 * `recheckSeconds` on every other instance.
 */
export class SessionStore {
  private readonly table: TokenTable;
  private readonly keyRing: KeyRing;
  private readonly idleMs: number;
  private readonly absoluteMs: number;
  private readonly recheckMs: number;
  private readonly l1: L1TokenCache<RememberedSession>;
  private readonly now: () => number;
  /**
   * The row of every cookie opened lately, by the cookie's SHA-256 (never the cookie, a bearer
   * value): opening one (base64url, AES-GCM, JSON, the row key's digest) was the largest cost of
   * a call served from the L1 (docs/performance.md). A cookie maps to one row for the life of the
   * process (the key ring is fixed at start), so this holds nothing that can go stale; whether the
   * session lives is the L1's and the table's to say.
   */
  private readonly openedCookies = new Map<string, SessionRow>();

  constructor(
    table: TokenTable,
    keyRing: KeyRing,
    lifetimes: SessionLifetimes,
    { l1 = new L1TokenCache(), now = Date.now }: SessionStoreOptions = {},
  ) {
    this.table = table;
    this.keyRing = keyRing;
    this.idleMs = lifetimes.idleMinutes * 60_000;
    this.absoluteMs = lifetimes.absoluteHours * 3_600_000;
    this.recheckMs = (lifetimes.recheckSeconds ?? 0) * 1000;
    this.l1 = l1;
    this.now = now;
  }

  /**
   * Starts a new session with a new random id (never one the browser brought); `claimsDigest` when
   * the sign-in carried a claims request.
   */
  async create(
    user: SignedInUser,
    { claimsDigest }: { readonly claimsDigest?: string } = {},
  ): Promise<NewSession> {
    const partitionKey = partitionKeyOf(user.homeAccountId);
    const sessionId = randomBytes(32).toString('base64url');
    const now = new Date(this.now());
    const entity: SessionEntity = {
      Username: user.username,
      Csrf: randomBytes(32).toString('base64url'),
      Created: now,
      LastUsed: now,
      ExpiresAt: new Date(now.getTime() + this.absoluteMs),
      ...(user.name === undefined ? {} : { Name: user.name }),
      ...(user.loginHint === undefined ? {} : { LoginHint: user.loginHint }),
      ...(claimsDigest === undefined ? {} : { ClaimsDigest: claimsDigest }),
    };
    await this.guard(() =>
      this.table.run(() =>
        this.table.client.createEntity({ partitionKey, rowKey: rowKeyOf(sessionId), ...entity }),
      ),
    );
    const reference: CookieReference = { p: partitionKey, s: sessionId };
    return {
      session: this.toSession(partitionKey, rowKeyOf(sessionId), entity),
      cookieValue: this.keyRing
        .seal(Buffer.from(JSON.stringify(reference)), COOKIE_ASSOCIATED_DATA)
        .toString('base64url'),
      maxAgeSeconds: Math.floor(this.absoluteMs / 1000),
    };
  }

  /**
   * The live session a cookie refers to, or undefined for a forged, garbled, expired or revoked one.
   * With `withTokenCache`, the same query also returns the user's token-cache row, so a proxied
   * call costs one round trip, or none while the session is served from memory. Renews the idle
   * deadline at most once per tenth of the idle lifetime, so steady traffic does not write on
   * every request.
   */
  async resolve(
    cookieValue: string | undefined,
    { withTokenCache = false } = {},
  ): Promise<Session | undefined> {
    const row = this.rowOf(cookieValue);
    if (row === undefined) return undefined;
    const { partitionKey, rowKey } = row;
    const remembered = this.l1.getSession(partitionKey, rowKey, withTokenCache, this.now());
    if (remembered !== undefined) {
      return withTokenCache ? { ...remembered, tokenCacheRow: 'remembered' } : remembered;
    }
    const epoch = this.l1.epoch;
    const rows = await this.readRows(
      partitionKey,
      withTokenCache ? [rowKey, TOKEN_CACHE_ROW_KEY] : [rowKey],
    );
    const entity = rows.get(rowKey) as (SessionEntity & StoredEntity) | undefined;
    if (entity === undefined) {
      this.l1.forgetSession(partitionKey, rowKey);
      return undefined;
    }
    const tokenCacheRow = rows.get(TOKEN_CACHE_ROW_KEY) ?? null;
    if (withTokenCache) this.l1.observeRow(partitionKey, tokenCacheRow?.etag);
    let session = this.toSession(partitionKey, rowKey, entity);
    let lastUsed = entity.LastUsed.getTime();
    const now = this.now();
    // An ended session's row is left to the stale-row clean-up (or the user's last sign-out):
    // a request that is not signed in never writes.
    if (now >= session.expiresAt.getTime() || now >= session.idleExpiresAt.getTime()) {
      return undefined;
    }
    if (now - lastUsed > this.idleMs / 10) {
      await this.touch(partitionKey, rowKey, entity.etag, new Date(now));
      lastUsed = now;
      session = {
        ...session,
        idleExpiresAt: new Date(Math.min(now + this.idleMs, session.expiresAt.getTime())),
      };
    }
    this.remember(partitionKey, rowKey, session, { lastUsed, withTokenCache, epoch });
    return withTokenCache ? { ...session, tokenCacheRow } : session;
  }

  /**
   * Keeps a session just read for SESSION_RECHECK_SECONDS, but never past its end or the time its
   * idle deadline is due for renewal, so renewals are written as often as without the L1.
   */
  private remember(
    partitionKey: string,
    rowKey: string,
    session: RememberedSession,
    {
      lastUsed,
      withTokenCache,
      epoch,
    }: { lastUsed: number; withTokenCache: boolean; epoch: number },
  ): void {
    if (this.recheckMs <= 0) return;
    const servableUntil = Math.min(
      this.now() + this.recheckMs,
      lastUsed + this.idleMs / 10,
      session.expiresAt.getTime(),
      session.idleExpiresAt.getTime(),
    );
    const bytes =
      SESSION_OVERHEAD_BYTES +
      session.id.length +
      session.homeAccountId.length +
      session.username.length +
      (session.name?.length ?? 0) +
      (session.loginHint?.length ?? 0) +
      (session.signInClaimsDigest?.length ?? 0) +
      session.csrfToken.length;
    this.l1.setSession(
      partitionKey,
      rowKey,
      { session, servableUntil, withTokenRow: withTokenCache, bytes },
      epoch,
    );
  }

  /** The partition's rows with these row keys, in one query. */
  private async readRows(
    partitionKey: string,
    rowKeys: readonly string[],
  ): Promise<Map<string, StoredEntity>> {
    const rows = new Map<string, StoredEntity>();
    // No table yet reads as no rows (the 404 below): a read never creates the table, so a request
    // that is not signed in writes nothing.
    try {
      const rowFilter = rowKeys.map((rowKey) => odata`RowKey eq ${rowKey}`).join(' or ');
      const query = this.table.client.listEntities<Record<string, unknown>>({
        queryOptions: { filter: `${odata`PartitionKey eq ${partitionKey}`} and (${rowFilter})` },
      });
      for await (const row of query) {
        if (row.rowKey !== undefined) rows.set(row.rowKey, row);
      }
    } catch (error) {
      if (statusOf(error) === 404) return rows;
      throw new TokenStoreUnavailableError('The session store did not answer', { cause: error });
    }
    return rows;
  }

  /** Ends the session the cookie refers to, if any. */
  async delete(cookieValue: string | undefined): Promise<void> {
    const row = this.rowOf(cookieValue);
    if (row === undefined) return;
    this.openedCookies.delete(digestOf(cookieValue as string));
    await this.deleteRow(row.partitionKey, row.rowKey);
  }

  /** The user's live sessions, oldest first. */
  async list(homeAccountId: string): Promise<SessionSummary[]> {
    const now = this.now();
    const sessions = (await this.sessionRows(partitionKeyOf(homeAccountId)))
      .map(({ rowKey, entity }) => ({
        id: publicIdOf(rowKey),
        createdAt: entity.Created,
        lastUsedAt: entity.LastUsed,
        expiresAt: entity.ExpiresAt,
        idleExpiresAt: this.idleExpiryOf(entity),
      }))
      .filter(
        (session) => now < session.expiresAt.getTime() && now < session.idleExpiresAt.getTime(),
      );
    return sessions.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /**
   * Ends the user's session with this public id. False when the user has no such session: an id
   * of another user's session names nothing in this user's partition.
   */
  async end(homeAccountId: string, id: string): Promise<boolean> {
    if (!PUBLIC_ID_PATTERN.test(id)) return false;
    const partitionKey = partitionKeyOf(homeAccountId);
    const row = (await this.sessionRows(partitionKey)).find(
      ({ rowKey }) => publicIdOf(rowKey) === id,
    );
    if (row === undefined) return false;
    await this.deleteRow(partitionKey, row.rowKey);
    return true;
  }

  /** Ends every session of the user, on every device (sign-out everywhere, a dead refresh token). */
  async deleteAllFor(homeAccountId: string): Promise<void> {
    const partitionKey = partitionKeyOf(homeAccountId);
    this.l1.forgetSessions(partitionKey);
    try {
      for (const { rowKey } of await this.sessionRows(partitionKey)) {
        await this.deleteRow(partitionKey, rowKey);
      }
    } finally {
      // Anything read while the rows were going must not be served now they are gone.
      this.l1.forgetSessions(partitionKey);
    }
  }

  /** Every session row of the partition, live or not, in one query. */
  private async sessionRows(
    partitionKey: string,
  ): Promise<{ rowKey: string; entity: SessionEntity }[]> {
    const rows: { rowKey: string; entity: SessionEntity }[] = [];
    try {
      const query = this.table.client.listEntities<SessionEntity>({
        queryOptions: {
          filter: odata`PartitionKey eq ${partitionKey} and RowKey ge ${SESSION_ROW_PREFIX} and RowKey lt ${SESSION_ROW_END}`,
          select: ['RowKey', 'Created', 'LastUsed', 'ExpiresAt'],
        },
      });
      for await (const row of query) {
        if (row.rowKey !== undefined) rows.push({ rowKey: row.rowKey, entity: row });
      }
    } catch (error) {
      if (statusOf(error) === 404) return rows;
      throw new TokenStoreUnavailableError('The session store did not answer', { cause: error });
    }
    return rows;
  }

  /** The row a session cookie names, or undefined for a forged or garbled one. */
  private rowOf(cookieValue: string | undefined): SessionRow | undefined {
    if (cookieValue === undefined) return undefined;
    const digest = digestOf(cookieValue);
    const known = this.openedCookies.get(digest);
    if (known !== undefined) return known;
    const reference = this.open(cookieValue);
    if (reference === undefined) return undefined;
    const row = { partitionKey: reference.p, rowKey: rowKeyOf(reference.s) };
    if (this.openedCookies.size >= OPENED_COOKIES) {
      // The oldest first: a Map iterates in insertion order.
      this.openedCookies.delete(this.openedCookies.keys().next().value as string);
    }
    this.openedCookies.set(digest, row);
    return row;
  }

  private open(cookieValue: string | undefined): CookieReference | undefined {
    if (cookieValue === undefined || !/^[A-Za-z0-9_-]+$/.test(cookieValue)) return undefined;
    try {
      const opened = this.keyRing.open(
        Buffer.from(cookieValue, 'base64url'),
        COOKIE_ASSOCIATED_DATA,
      );
      const reference = JSON.parse(opened.toString('utf8')) as Partial<CookieReference>;
      if (typeof reference.p !== 'string' || typeof reference.s !== 'string') return undefined;
      return { p: partitionKeyOf(reference.p), s: reference.s };
    } catch (error) {
      if (error instanceof UnreadableSealError || error instanceof SyntaxError) return undefined;
      if (error instanceof Error && /partition key/.test(error.message)) return undefined;
      throw error;
    }
  }

  private idleExpiryOf(entity: Pick<SessionEntity, 'LastUsed' | 'ExpiresAt'>): Date {
    return new Date(Math.min(entity.LastUsed.getTime() + this.idleMs, entity.ExpiresAt.getTime()));
  }

  private toSession(partitionKey: string, rowKey: string, entity: SessionEntity): Session {
    return {
      id: publicIdOf(rowKey),
      homeAccountId: partitionKey,
      name: entity.Name,
      username: entity.Username,
      loginHint: entity.LoginHint,
      csrfToken: entity.Csrf,
      createdAt: entity.Created,
      expiresAt: entity.ExpiresAt,
      idleExpiresAt: this.idleExpiryOf(entity),
      ...(typeof entity.ClaimsDigest === 'string'
        ? { signInClaimsDigest: entity.ClaimsDigest }
        : {}),
    };
  }

  private async touch(
    partitionKey: string,
    rowKey: string,
    etag: string,
    now: Date,
  ): Promise<void> {
    try {
      await this.table.client.updateEntity({ partitionKey, rowKey, LastUsed: now }, 'Merge', {
        etag,
      });
    } catch (error) {
      // 412: another request renewed it first; 404: it ended meanwhile. Either way nothing to do.
      if (statusOf(error) === 412 || statusOf(error) === 404) return;
      throw new TokenStoreUnavailableError('The session store did not answer', { cause: error });
    }
  }

  /**
   * Every session this store ends goes through here: it is forgotten before the delete (this
   * instance stops serving it at once) and after (a read made meanwhile is not kept).
   */
  private async deleteRow(partitionKey: string, rowKey: string): Promise<void> {
    this.l1.forgetSession(partitionKey, rowKey);
    try {
      await this.guard(async () => {
        try {
          await this.table.client.deleteEntity(partitionKey, rowKey);
        } catch (error) {
          if (statusOf(error) !== 404) throw error;
        }
      });
    } finally {
      this.l1.forgetSession(partitionKey, rowKey);
    }
  }

  private async guard(operation: () => Promise<unknown>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      if (error instanceof TokenStoreUnavailableError) throw error;
      throw new TokenStoreUnavailableError('The session store did not answer', { cause: error });
    }
  }
}
