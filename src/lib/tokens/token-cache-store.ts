import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { TableEntityResult } from '@azure/data-tables';
import { CacheTooLargeError, TokenStoreUnavailableError } from '../errors';
import { UnreadableSealError, type KeyRing } from './key-ring';
import { statusOf, type TokenTable } from './table-storage';

/** The row key of a user's token cache, beside other rows (sessions) in the user's partition. */
export const TOKEN_CACHE_ROW_KEY = 'tokencache';
const FORMAT_VERSION = 1;
// A binary property holds at most 64 KiB and an entity 1 MiB: 15 full chunks leave room for the rest.
const CHUNK_BYTES = 64 * 1024;
const MAX_CHUNKS = 15;
// Guards the inflate against a row crafted to expand without bound.
const MAX_CACHE_BYTES = 16 * 1024 * 1024;

export interface CacheRow {
  /** MSAL's serialized cache (JSON). */
  readonly serialized: string;
  readonly etag: string;
}

/** Another writer changed or created the row since it was read (412 or 409). */
export class ConcurrentUpdateError extends Error {
  constructor(options?: ErrorOptions) {
    super('the token cache row was changed by another writer', options);
    this.name = 'ConcurrentUpdateError';
  }
}

/** The row exists but does not open or parse: wrong key, tampering, or moved from another partition. */
export class UnreadableCacheError extends Error {
  /** The unreadable row's ETag, so a writer can replace it. */
  readonly etag: string;

  constructor(reason: string, etag: string, options?: ErrorOptions) {
    super(`the token cache row cannot be read: ${reason}`, options);
    this.name = 'UnreadableCacheError';
    this.etag = etag;
  }
}

/** A row as Table Storage returned it. */
export type StoredEntity = TableEntityResult<Record<string, unknown>>;

/**
 * The user's token-cache row as a request got it with its session: the entity read in the same
 * query (null: the user has none), or `remembered`: the session came from memory, the row was read
 * with it within SESSION_RECHECK_SECONDS, and the L1 holds what this instance knows of it.
 */
export type TokenCacheRowAsRead = StoredEntity | null | 'remembered';

interface CacheEntity {
  Version: number;
  Chunks: number;
  LastUsed: Date;
  [chunk: `D${number}`]: Uint8Array;
}

function storeFailure(error: unknown): Error {
  const status = statusOf(error);
  if (status === 409 || status === 412) return new ConcurrentUpdateError({ cause: error });
  return new TokenStoreUnavailableError('The token store did not answer', { cause: error });
}

/** The partition's name is the associated data, so a row copied into another partition does not open. */
function associatedData(partitionKey: string): string {
  return `tokencache/v${FORMAT_VERSION}/${partitionKey}`;
}

/**
 * One row per user holding MSAL's serialized cache, compressed, sealed with AES-256-GCM and split
 * into binary chunks. Writes are conditional on the ETag read, so concurrent writers never silently
 * overwrite each other.
 */
export class TokenCacheStore {
  private readonly table: TokenTable;
  private readonly keyRing: KeyRing;

  constructor(table: TokenTable, keyRing: KeyRing) {
    this.table = table;
    this.keyRing = keyRing;
  }

  /** The user's cache, or undefined when the user has none. */
  async read(partitionKey: string): Promise<CacheRow | undefined> {
    await this.table.ensureExists();
    let entity: StoredEntity;
    try {
      entity = await this.table.client.getEntity(partitionKey, TOKEN_CACHE_ROW_KEY);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw storeFailure(error);
    }
    return this.fromEntity(partitionKey, entity);
  }

  /**
   * The cache held by a row another query already fetched (e.g. beside the user's session), so a
   * request costs one round trip. Throws `UnreadableCacheError` for a row that does not open.
   */
  fromEntity(partitionKey: string, entity: StoredEntity): CacheRow {
    try {
      return { serialized: this.open(partitionKey, entity), etag: entity.etag };
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      throw new UnreadableCacheError(error.message, entity.etag, { cause: error.cause });
    }
  }

  /**
   * Stores the cache: creates the row when `etag` is undefined, else replaces it only if unchanged.
   * Resolves with the new ETag; throws `ConcurrentUpdateError` when another writer got there first.
   */
  async write(partitionKey: string, serialized: string, etag: string | undefined): Promise<string> {
    const entity = {
      partitionKey,
      rowKey: TOKEN_CACHE_ROW_KEY,
      ...this.seal(partitionKey, serialized),
    };
    try {
      const response = await this.table.run(() =>
        etag === undefined
          ? this.table.client.createEntity(entity)
          : this.table.client.updateEntity(entity, 'Replace', { etag }),
      );
      if (response.etag === undefined) throw new Error('the table answered without an ETag');
      return response.etag;
    } catch (error) {
      // A conditional replace of a row deleted since it was read answers 404: it changed too.
      if (etag !== undefined && statusOf(error) === 404)
        throw new ConcurrentUpdateError({ cause: error });
      throw storeFailure(error);
    }
  }

  /** Removes the user's cache whatever its state: used at sign-out and when sign-in is required. */
  async delete(partitionKey: string): Promise<void> {
    await this.table.ensureExists();
    try {
      await this.table.client.deleteEntity(partitionKey, TOKEN_CACHE_ROW_KEY);
    } catch (error) {
      if (statusOf(error) !== 404) throw storeFailure(error);
    }
  }

  private seal(partitionKey: string, serialized: string): CacheEntity {
    const sealed = this.keyRing.seal(
      deflateRawSync(Buffer.from(serialized, 'utf8')),
      associatedData(partitionKey),
    );
    const chunks = Math.ceil(sealed.length / CHUNK_BYTES);
    if (chunks > MAX_CHUNKS) throw new CacheTooLargeError(sealed.length, MAX_CHUNKS * CHUNK_BYTES);
    const entity: CacheEntity = { Version: FORMAT_VERSION, Chunks: chunks, LastUsed: new Date() };
    for (let index = 0; index < chunks; index += 1) {
      entity[`D${index}`] = sealed.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES);
    }
    return entity;
  }

  /** Throws an `Error` whose message says, without any content, why the row does not open. */
  private open(partitionKey: string, entity: Record<string, unknown>): string {
    const chunks = entity.Chunks;
    if (entity.Version !== FORMAT_VERSION || typeof chunks !== 'number' || chunks > MAX_CHUNKS) {
      throw new Error('unknown row format');
    }
    const parts: Uint8Array[] = [];
    for (let index = 0; index < chunks; index += 1) {
      const part = entity[`D${index}`];
      if (!(part instanceof Uint8Array)) throw new Error('a chunk is missing');
      parts.push(part);
    }
    try {
      const compressed = this.keyRing.open(Buffer.concat(parts), associatedData(partitionKey));
      const serialized = inflateRawSync(compressed, { maxOutputLength: MAX_CACHE_BYTES }).toString(
        'utf8',
      );
      JSON.parse(serialized);
      return serialized;
    } catch (error) {
      const reason =
        error instanceof UnreadableSealError ? error.message : 'the content does not parse';
      throw new Error(reason, { cause: error });
    }
  }
}
