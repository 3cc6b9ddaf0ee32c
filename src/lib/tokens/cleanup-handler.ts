import type { TimerHandler } from '@azure/functions';
import type { AppServices } from '../app-services';
import { deleteStaleRows } from './stale-row-cleanup';

const DAY_MS = 24 * 60 * 60 * 1000;

export function createCleanupHandler({ config, tokenTable }: AppServices): TimerHandler {
  return async (_timer, context) => {
    const cutoff = new Date(Date.now() - config.tokenCache.retentionDays * DAY_MS);
    const result = await deleteStaleRows(tokenTable, cutoff);
    context.log(
      `token cache clean-up: deleted ${result.deleted} rows unused since ${cutoff.toISOString()}` +
        (result.truncated ? ' (stopped at the per-run limit; the next run continues)' : ''),
    );
  };
}
