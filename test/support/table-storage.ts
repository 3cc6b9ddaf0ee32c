import { randomBytes } from 'node:crypto';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { createTableClient, TokenTable } from '../../src/lib/tokens/table-storage.ts';

/** Counts the HTTP requests a table client sends, by method. */
export class RequestCounter {
  readonly counts = { GET: 0, POST: 0, PUT: 0, MERGE: 0, PATCH: 0, DELETE: 0 } as Record<
    string,
    number
  >;

  readonly policy: PipelinePolicy = {
    name: 'requestCounter',
    sendRequest: (request, next) => {
      this.counts[request.method] = (this.counts[request.method] ?? 0) + 1;
      return next(request);
    },
  };

  get reads(): number {
    return this.counts.GET ?? 0;
  }

  get writes(): number {
    return (
      (this.counts.PUT ?? 0) +
      (this.counts.MERGE ?? 0) +
      (this.counts.PATCH ?? 0) +
      (this.counts.DELETE ?? 0) +
      (this.counts.POST ?? 0)
    );
  }

  reset(): void {
    for (const method of Object.keys(this.counts)) this.counts[method] = 0;
  }
}

export function uniqueTableName(prefix = 't'): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** A token table on the given Azurite, with a request counter in its pipeline. */
export function tokenTableOn(
  connectionString: string,
  tableName = uniqueTableName(),
): { table: TokenTable; counter: RequestCounter; tableName: string } {
  const client = createTableClient({ kind: 'connectionString', connectionString }, tableName);
  const counter = new RequestCounter();
  client.pipeline.addPolicy(counter.policy);
  return { table: new TokenTable(client), counter, tableName };
}
