import { odata } from '@azure/data-tables';
import { TokenStoreUnavailableError } from '../errors';
import { statusOf, type TokenTable } from './table-storage';

export interface CleanupLimits {
  /** Rows deleted at most in one run; the next run goes on where this one stopped. */
  readonly maxDeletes: number;
  readonly pageSize: number;
}

export interface CleanupResult {
  readonly deleted: number;
  /** True when the run stopped at `maxDeletes` with stale rows possibly left. */
  readonly truncated: boolean;
}

const DEFAULT_LIMITS: CleanupLimits = { maxDeletes: 5_000, pageSize: 100 };

/**
 * Deletes rows not used since `cutoff`: their refresh tokens have expired, so they can only waste
 * space. Each delete is conditional on the ETag the query saw, so a row used again meanwhile stays.
 */
export async function deleteStaleRows(
  table: TokenTable,
  cutoff: Date,
  limits: CleanupLimits = DEFAULT_LIMITS,
): Promise<CleanupResult> {
  await table.ensureExists();
  let deleted = 0;
  try {
    const pages = table.client
      .listEntities({
        queryOptions: { filter: odata`LastUsed lt ${cutoff}`, select: ['PartitionKey', 'RowKey'] },
      })
      .byPage({ maxPageSize: limits.pageSize });
    for await (const page of pages) {
      for (const row of page) {
        if (deleted >= limits.maxDeletes) return { deleted, truncated: true };
        try {
          await table.client.deleteEntity(row.partitionKey ?? '', row.rowKey ?? '', {
            etag: row.etag,
          });
          deleted += 1;
        } catch (error) {
          // 404: gone already; 412: used again since the query, so no longer stale.
          if (statusOf(error) !== 404 && statusOf(error) !== 412) throw error;
        }
      }
    }
  } catch (error) {
    throw new TokenStoreUnavailableError('The stale-row clean-up could not finish', {
      cause: error,
    });
  }
  return { deleted, truncated: false };
}
