import { describe, expect, inject, it } from 'vitest';
import { deleteStaleRows } from '../../src/lib/tokens/stale-row-cleanup.ts';
import { tokenTableOn } from '../support/table-storage.ts';

const DAY = 24 * 60 * 60 * 1000;

describe('deleteStaleRows', () => {
  it('deletes only rows unused since the cutoff, in bounded runs', async () => {
    const { table } = tokenTableOn(inject('azuriteConnectionString'));
    await table.ensureExists();
    const now = Date.now();
    for (let i = 0; i < 7; i += 1) {
      await table.client.createEntity({
        partitionKey: `stale${i}.t`,
        rowKey: 'tokencache',
        LastUsed: new Date(now - 100 * DAY),
      });
    }
    await table.client.createEntity({
      partitionKey: 'fresh.t',
      rowKey: 'tokencache',
      LastUsed: new Date(now - DAY),
    });
    await table.client.createEntity({
      partitionKey: 'edge.t',
      rowKey: 'tokencache',
      LastUsed: new Date(now - 89 * DAY),
    });

    const cutoff = new Date(now - 90 * DAY);
    const first = await deleteStaleRows(table, cutoff, { maxDeletes: 5, pageSize: 2 });
    expect(first).toEqual({ deleted: 5, truncated: true });
    const second = await deleteStaleRows(table, cutoff, { maxDeletes: 5, pageSize: 2 });
    expect(second).toEqual({ deleted: 2, truncated: false });

    const left = [];
    for await (const row of table.client.listEntities()) left.push(row.partitionKey);
    expect(left.sort()).toEqual(['edge.t', 'fresh.t']);
  });
});
