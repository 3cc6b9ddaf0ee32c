import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import { hasNoAccount, homeAccountIds, mergeCaches } from './cache-merge';
import { TokenStoreUnavailableError } from '../errors';
import { partitionKeyOf } from './partition-key';
import {
  ConcurrentUpdateError,
  UnreadableCacheError,
  type StoredEntity,
  type TokenCacheStore,
} from './token-cache-store';

// Each retry follows a fresh read, so only a burst of writers to one user's row exhausts it.
const MAX_WRITE_ATTEMPTS = 5;

/**
 * MSAL's cache plugin for one user and one request: reads the user's row once, however often MSAL
 * touches the cache in that request; writes only when MSAL changed the cache, conditionally on the
 * ETag it read, merging with the other writer's row when it lost a race; deletes the row when no
 * account is left.
 *
 * Never share one across users or requests: it holds that user's row in memory.
 */
export class TableTokenCache implements ICachePlugin {
  private readonly store: TokenCacheStore;
  private partitionKey: string | undefined;
  private loaded = false;
  /** The cache as this request last read or wrote it: the base of a merge. */
  private base: string | undefined;
  private etag: string | undefined;
  /** Set when the user's row exists but cannot be read: the user must sign in again. */
  unreadable: UnreadableCacheError | undefined;
  /** The store's failure, kept because MSAL may wrap what a plugin throws. */
  failure: Error | undefined;

  private readonly preloaded: StoredEntity | null | undefined;

  /**
   * Without a partition key (at sign-in) the cache starts empty and the key comes from the
   * account. `preloaded` is the user's row as a query already fetched it (null: it has none), so
   * the plugin makes no read of its own.
   */
  constructor(store: TokenCacheStore, partitionKey?: string, preloaded?: StoredEntity | null) {
    this.store = store;
    this.partitionKey = partitionKey;
    this.preloaded = preloaded;
  }

  /** The ETag of the user's row as this request last read or wrote it; undefined if it has none. */
  get rowEtag(): string | undefined {
    return this.etag;
  }

  async beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    if (this.loaded || this.partitionKey === undefined) return;
    const partitionKey = this.partitionKey;
    await this.guard(async () => {
      try {
        const row =
          this.preloaded === undefined
            ? await this.store.read(partitionKey)
            : this.preloaded === null
              ? undefined
              : this.store.fromEntity(partitionKey, this.preloaded);
        if (row !== undefined) {
          this.base = row.serialized;
          this.etag = row.etag;
          context.tokenCache.deserialize(row.serialized);
        }
      } catch (error) {
        if (!(error instanceof UnreadableCacheError)) throw error;
        this.unreadable = error;
      }
      this.loaded = true;
    });
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    const local = context.tokenCache.serialize();
    await this.guard(async () => {
      const partitionKey = this.partitionKey ?? this.partitionKeyFrom(local);
      this.partitionKey = partitionKey;
      this.loaded = true;
      if (hasNoAccount(local)) {
        await this.store.delete(partitionKey);
        this.base = undefined;
        this.etag = undefined;
        return;
      }
      const written = await this.writeMerging(partitionKey, local);
      if (written !== local) context.tokenCache.deserialize(written);
    });
  }

  /** Removes the user's row, whatever it holds. */
  async deleteRow(): Promise<void> {
    if (this.partitionKey === undefined) return;
    const partitionKey = this.partitionKey;
    await this.guard(() => this.store.delete(partitionKey));
    this.base = undefined;
    this.etag = undefined;
  }

  private async writeMerging(partitionKey: string, local: string): Promise<string> {
    let candidate = local;
    const hadRow = this.etag !== undefined || this.unreadable !== undefined;
    let etag = this.etag ?? this.unreadable?.etag;
    for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt += 1) {
      try {
        this.etag = await this.store.write(partitionKey, candidate, etag);
        this.base = candidate;
        this.unreadable = undefined;
        return candidate;
      } catch (error) {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
      }
      let remote;
      try {
        remote = await this.store.read(partitionKey);
      } catch (error) {
        if (!(error instanceof UnreadableCacheError)) throw error;
        // Nothing readable to keep: this request's cache replaces it.
        candidate = local;
        etag = error.etag;
        continue;
      }
      if (remote === undefined) {
        // Removed since this request read it (the user signed out elsewhere): do not bring it back.
        if (hadRow) return local;
        etag = undefined;
        candidate = local;
        continue;
      }
      candidate = mergeCaches(this.base, local, remote.serialized);
      etag = remote.etag;
    }
    throw new TokenStoreUnavailableError(
      `the token cache row kept changing: gave up after ${MAX_WRITE_ATTEMPTS} attempts`,
    );
  }

  private partitionKeyFrom(serialized: string): string {
    const ids = homeAccountIds(serialized);
    if (ids.length !== 1 || ids[0] === undefined) {
      throw new Error(`a per-user token cache must hold one account, it holds ${ids.length}`);
    }
    return partitionKeyOf(ids[0]);
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }
}
