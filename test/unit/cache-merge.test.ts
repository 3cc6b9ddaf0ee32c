import { describe, expect, it } from 'vitest';
import { hasNoAccount, homeAccountIds, mergeCaches } from '../../src/lib/tokens/cache-merge.ts';

const cache = (sections: Record<string, Record<string, unknown>>) => JSON.stringify(sections);
const account = { home_account_id: 'oid.tid', environment: 'login' };

describe('mergeCaches', () => {
  const base = cache({
    Account: { a: account },
    RefreshToken: { rt: { secret: 'rt-1' } },
    AccessToken: { read: { secret: 'at-read-1' } },
  });

  it('keeps what this request changed and what the other writer changed', () => {
    const local = cache({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-2' } },
      AccessToken: { read: { secret: 'at-read-2' } },
    });
    const remote = cache({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-1' } },
      AccessToken: { read: { secret: 'at-read-1' }, write: { secret: 'at-write-1' } },
    });
    expect(JSON.parse(mergeCaches(base, local, remote))).toEqual({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-2' } },
      AccessToken: { read: { secret: 'at-read-2' }, write: { secret: 'at-write-1' } },
    });
  });

  it('applies removals made on either side', () => {
    const local = cache({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-1' } },
      AccessToken: {},
    });
    const remote = cache({
      Account: { a: account },
      RefreshToken: {},
      AccessToken: { read: { secret: 'at-read-1' } },
    });
    expect(JSON.parse(mergeCaches(base, local, remote))).toEqual({
      Account: { a: account },
      RefreshToken: {},
      AccessToken: {},
    });
  });

  it('treats entries equal up to key order as unchanged', () => {
    const reordered = cache({
      Account: { a: { environment: 'login', home_account_id: 'oid.tid' } },
      RefreshToken: { rt: { secret: 'rt-1' } },
      AccessToken: { read: { secret: 'at-read-1' } },
    });
    const remote = cache({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-9' } },
      AccessToken: {},
    });
    expect(JSON.parse(mergeCaches(base, reordered, remote))).toMatchObject({
      RefreshToken: { rt: { secret: 'rt-9' } },
      AccessToken: {},
    });
  });

  it('merges into an empty base (a sign-in beside an existing row)', () => {
    const local = cache({ Account: { a: account }, RefreshToken: { rt: { secret: 'new' } } });
    const remote = cache({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'old' } },
      AccessToken: { x: { secret: 'x' } },
    });
    expect(JSON.parse(mergeCaches(undefined, local, remote))).toEqual({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'new' } },
      AccessToken: { x: { secret: 'x' } },
    });
  });
});

describe('account helpers', () => {
  it('finds accounts and notices when none is left', () => {
    expect(homeAccountIds(cache({ Account: { a: account, b: account } }))).toEqual(['oid.tid']);
    expect(hasNoAccount(cache({ Account: {} }))).toBe(true);
    expect(hasNoAccount('{}')).toBe(true);
    expect(hasNoAccount(cache({ Account: { a: account } }))).toBe(false);
  });
});
