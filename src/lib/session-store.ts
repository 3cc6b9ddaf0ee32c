import { createHash, randomBytes } from 'node:crypto';
import { odata } from '@azure/data-tables';
import { TokenStoreUnavailableError } from './errors';
import { UnreadableSealError, type KeyRing } from './key-ring';
import { partitionKeyOf } from './partition-key';
import { statusOf, type TokenTable } from './table-storage';
import { TOKEN_CACHE_ROW_KEY, type StoredEntity } from './token-cache-store';
import type { SignedInUser } from './token-service';

const SESSION_ROW_PREFIX = 'session.';
// The first key after every `session.…` key: '/' follows '.' in code-point order.
const SESSION_ROW_END = 'session/';
const COOKIE_ASSOCIATED_DATA = 'session-cookie/v1';

export interface SessionLifetimes {
  readonly idleMinutes: number;
  readonly absoluteHours: number;
}

export interface Session {
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
  /** The user's token-cache row (null: none), when read with the session. */
  readonly tokenCacheRow?: StoredEntity | null;
}

export interface NewSession {
  readonly session: Session;
  /** The sealed reference to put in the session cookie. */
  readonly cookieValue: string;
  readonly maxAgeSeconds: number;
}

interface CookieReference {
  readonly p: string;
  readonly s: string;
}

interface SessionEntity {
  Name?: string;
  Username: string;
  LoginHint?: string;
  Csrf: string;
  Created: Date;
  LastUsed: Date;
  ExpiresAt: Date;
}

/** The row stores a digest, so reading the table does not give anyone a usable session id. */
function rowKeyOf(sessionId: string): string {
  return SESSION_ROW_PREFIX + createHash('sha256').update(sessionId).digest('hex');
}

/**
 * Server-side sessions, one row each in the user's partition of the token table, so they can be
 * revoked and are served by any instance. The cookie holds only a sealed reference to the row.
 */
export class SessionStore {
  private readonly table: TokenTable;
  private readonly keyRing: KeyRing;
  private readonly idleMs: number;
  private readonly absoluteMs: number;
  private readonly now: () => number;

  constructor(table: TokenTable, keyRing: KeyRing, lifetimes: SessionLifetimes, now = Date.now) {
    this.table = table;
    this.keyRing = keyRing;
    this.idleMs = lifetimes.idleMinutes * 60_000;
    this.absoluteMs = lifetimes.absoluteHours * 3_600_000;
    this.now = now;
  }

  /** Starts a new session with a new random id (never one the browser brought). */
  async create(user: SignedInUser): Promise<NewSession> {
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
    };
    await this.guard(() =>
      this.table.run(() =>
        this.table.client.createEntity({ partitionKey, rowKey: rowKeyOf(sessionId), ...entity }),
      ),
    );
    const reference: CookieReference = { p: partitionKey, s: sessionId };
    return {
      session: this.toSession(partitionKey, entity),
      cookieValue: this.keyRing
        .seal(Buffer.from(JSON.stringify(reference)), COOKIE_ASSOCIATED_DATA)
        .toString('base64url'),
      maxAgeSeconds: Math.floor(this.absoluteMs / 1000),
    };
  }

  /**
   * The live session a cookie refers to, or undefined for a forged, garbled, expired or revoked one.
   * With `withTokenCache`, the same query also returns the user's token-cache row, so a proxied
   * call costs one round trip. Renews the idle deadline at most once per tenth of the idle
   * lifetime, so steady traffic does not write on every request.
   */
  async resolve(
    cookieValue: string | undefined,
    { withTokenCache = false } = {},
  ): Promise<Session | undefined> {
    const reference = this.open(cookieValue);
    if (reference === undefined) return undefined;
    const rowKey = rowKeyOf(reference.s);
    const rows = await this.readRows(
      reference.p,
      withTokenCache ? [rowKey, TOKEN_CACHE_ROW_KEY] : [rowKey],
    );
    const entity = rows.get(rowKey) as (SessionEntity & StoredEntity) | undefined;
    if (entity === undefined) return undefined;
    const session: Session = {
      ...this.toSession(reference.p, entity),
      ...(withTokenCache ? { tokenCacheRow: rows.get(TOKEN_CACHE_ROW_KEY) ?? null } : {}),
    };
    const now = this.now();
    if (now >= session.expiresAt.getTime() || now >= session.idleExpiresAt.getTime()) {
      await this.deleteRow(reference.p, rowKey);
      return undefined;
    }
    if (now - entity.LastUsed.getTime() > this.idleMs / 10) {
      await this.touch(reference.p, rowKey, entity.etag, new Date(now));
      return {
        ...session,
        idleExpiresAt: new Date(Math.min(now + this.idleMs, session.expiresAt.getTime())),
      };
    }
    return session;
  }

  /** The partition's rows with these row keys, in one query. */
  private async readRows(
    partitionKey: string,
    rowKeys: readonly string[],
  ): Promise<Map<string, StoredEntity>> {
    const rows = new Map<string, StoredEntity>();
    try {
      await this.table.ensureExists();
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
    const reference = this.open(cookieValue);
    if (reference !== undefined) await this.deleteRow(reference.p, rowKeyOf(reference.s));
  }

  /** Ends every session of the user, on every device: used at sign-out, with the user's tokens. */
  async deleteAllFor(homeAccountId: string): Promise<void> {
    const partitionKey = partitionKeyOf(homeAccountId);
    await this.guard(async () => {
      await this.table.ensureExists();
      const sessions = this.table.client.listEntities({
        queryOptions: {
          filter: odata`PartitionKey eq ${partitionKey} and RowKey ge ${SESSION_ROW_PREFIX} and RowKey lt ${SESSION_ROW_END}`,
          select: ['RowKey'],
        },
      });
      for await (const row of sessions) {
        if (row.rowKey !== undefined) await this.deleteRow(partitionKey, row.rowKey);
      }
    });
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

  private toSession(partitionKey: string, entity: SessionEntity): Session {
    return {
      homeAccountId: partitionKey,
      name: entity.Name,
      username: entity.Username,
      loginHint: entity.LoginHint,
      csrfToken: entity.Csrf,
      createdAt: entity.Created,
      expiresAt: entity.ExpiresAt,
      idleExpiresAt: new Date(
        Math.min(entity.LastUsed.getTime() + this.idleMs, entity.ExpiresAt.getTime()),
      ),
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

  private async deleteRow(partitionKey: string, rowKey: string): Promise<void> {
    await this.guard(async () => {
      try {
        await this.table.client.deleteEntity(partitionKey, rowKey);
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    });
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
