import type { HttpHandler } from '@azure/functions';
import { TokenStoreUnavailableError } from './errors';
import { jsonResponse, problemResponse } from './problem-response';
import type { TokenTable } from './table-storage';

const RETRY_AFTER_SECONDS = 5;

/** Readiness: the app can serve users only while their tokens can be read. */
export function createHealthHandler(tokenTable: TokenTable): HttpHandler {
  return async (_request, context) => {
    try {
      await tokenTable.probe();
      return jsonResponse(200, { status: 'ok', tokenStore: 'reachable' });
    } catch (error) {
      if (!(error instanceof TokenStoreUnavailableError)) throw error;
      context.warn(`health: ${error.message}`);
      return problemResponse({
        status: 503,
        title: 'Service unavailable',
        detail: 'The token store is unreachable.',
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      });
    }
  };
}
