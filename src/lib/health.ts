import type { HttpHandler } from '@azure/functions';
import { dependencyFailure } from './http/dependency-errors';
import { jsonResponse, problemResponse } from './http/problem-response';
import type { TokenTable } from './tokens/table-storage';

/** Readiness: the app can serve users only while their tokens can be read. */
export function createHealthHandler(tokenTable: TokenTable): HttpHandler {
  return async (_request, context) => {
    try {
      await tokenTable.probe();
      return jsonResponse(200, { status: 'ok', tokenStore: 'reachable' });
    } catch (error) {
      const failure = dependencyFailure(error);
      if (failure === undefined) throw error;
      context.warn(`health: ${(error as Error).message}`);
      return problemResponse(failure);
    }
  };
}
