import { randomBytes } from 'node:crypto';
import { HttpRequest } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { readCookie } from '../../src/lib/auth/cookies.ts';
import { SessionStore } from '../../src/lib/auth/session-store.ts';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import type { TokenTable } from '../../src/lib/tokens/table-storage.ts';

function requestWith(cookie: string | undefined): HttpRequest {
  return new HttpRequest({
    method: 'GET',
    url: 'http://localhost/api/todos',
    headers: cookie === undefined ? {} : { cookie },
  });
}

describe('readCookie', () => {
  it('reads one cookie among others, trimmed, with "=" kept in its value', () => {
    const request = requestWith(' a=1;__Host-s=v=w== ;b=2; c');
    expect(readCookie(request, '__Host-s')).toBe('v=w==');
    expect(readCookie(request, 'a')).toBe('1');
    expect(readCookie(request, 'b')).toBe('2');
  });

  it('reads a missing, empty, duplicated or oversized cookie as absent', () => {
    expect(readCookie(requestWith(undefined), 's')).toBeUndefined();
    expect(readCookie(requestWith('a=1'), 's')).toBeUndefined();
    expect(readCookie(requestWith('s='), 's')).toBeUndefined();
    // A name without "=" is no cookie of that name; a longer name is another cookie.
    expect(readCookie(requestWith('s; ss=1; s2=2'), 's')).toBeUndefined();
    // Two of one name: one may have been planted (a sibling subdomain), so neither is trusted.
    expect(readCookie(requestWith('s=1; s=1'), 's')).toBeUndefined();
    expect(readCookie(requestWith('s=1; a=2; s=3'), 's')).toBeUndefined();
    expect(readCookie(requestWith(`s=${'x'.repeat(4097)}`), 's')).toBeUndefined();
    expect(readCookie(requestWith(`s=${'x'.repeat(4096)}`), 's')).toHaveLength(4096);
  });
});

/** Just enough of a table for sessions: rows in memory, every read a query over them. */
function tableInMemory(): TokenTable {
  const rows = new Map<string, Record<string, unknown>>();
  const key = (partitionKey: string, rowKey: string) => `${partitionKey}\n${rowKey}`;
  const client = {
    createEntity: (entity: { partitionKey: string; rowKey: string }) => {
      rows.set(key(entity.partitionKey, entity.rowKey), { ...entity, etag: 'W/"1"' });
      return Promise.resolve({});
    },
    deleteEntity: (partitionKey: string, rowKey: string) => {
      rows.delete(key(partitionKey, rowKey));
      return Promise.resolve({});
    },
    updateEntity: () => Promise.resolve({}),
    listEntities: () => ({
      // The store asks for the session row (and maybe the token-cache row) of one partition;
      // with one user here, every row is the answer.
      [Symbol.asyncIterator]: async function* () {
        await Promise.resolve();
        yield* rows.values();
      },
    }),
  };
  return { client, run: <T>(operation: () => Promise<T>) => operation() } as unknown as TokenTable;
}

/** A key ring that counts how often a sealed value is opened. */
class CountingKeyRing extends KeyRing {
  opened = 0;

  override open(sealed: Buffer, associatedData: string): Buffer {
    this.opened += 1;
    return super.open(sealed, associatedData);
  }
}

const user = {
  homeAccountId: '00000000-0000-0000-0000-000000000001.00000000-0000-0000-0000-0000000000aa',
  name: 'Ada',
  username: 'ada@example.com',
  loginHint: undefined,
};

describe('SessionStore: opened cookies', () => {
  it('opens a session cookie once, then finds its row by the cookie’s digest', async () => {
    const keys = new CountingKeyRing([randomBytes(32)]);
    const store = new SessionStore(tableInMemory(), keys, {
      idleMinutes: 120,
      absoluteHours: 24,
      recheckSeconds: 5,
    });
    const { cookieValue, session } = await store.create(user);
    for (let call = 0; call < 3; call += 1) {
      expect((await store.resolve(cookieValue))?.id).toBe(session.id);
    }
    expect(keys.opened).toBe(1);

    // Whether it lives is still the table's to say: once ended, it resolves to nothing.
    await store.delete(cookieValue);
    expect(await store.resolve(cookieValue)).toBeUndefined();
  });

  it('never remembers a cookie that does not open: each try is opened and refused', async () => {
    const keys = new CountingKeyRing([randomBytes(32)]);
    const store = new SessionStore(tableInMemory(), keys, { idleMinutes: 120, absoluteHours: 24 });
    const forged = new KeyRing([randomBytes(32)])
      .seal(Buffer.from(JSON.stringify({ p: user.homeAccountId, s: 'x' })), 'session-cookie/v1')
      .toString('base64url');
    expect(await store.resolve(forged)).toBeUndefined();
    expect(await store.resolve(forged)).toBeUndefined();
    expect(keys.opened).toBe(2);
  });

  it('remembers a bounded number of cookies, forgetting the oldest first', async () => {
    const keys = new CountingKeyRing([randomBytes(32)]);
    // No rows: each cookie opens, and its session is not found.
    const store = new SessionStore(tableInMemory(), keys, { idleMinutes: 120, absoluteHours: 24 });
    const cookies = Array.from({ length: 8193 }, (_, index) =>
      keys
        .seal(
          Buffer.from(JSON.stringify({ p: user.homeAccountId, s: `session-${index}` })),
          'session-cookie/v1',
        )
        .toString('base64url'),
    );
    for (const cookie of cookies) await store.resolve(cookie);
    expect(keys.opened).toBe(8193);
    // The newest is still known; the first was forgotten when the 8,193rd came, so it is opened again.
    await store.resolve(cookies.at(-1));
    expect(keys.opened).toBe(8193);
    await store.resolve(cookies[0]);
    expect(keys.opened).toBe(8194);
  });
});
