/**
 * Three-way merge of MSAL serialized caches, for a conditional write that lost a race: every entry
 * this request changed (added, replaced or removed since it read `base`) wins; every other entry is
 * taken as the other writer left it. Entries are MSAL's cache items (accounts, ID, access and refresh
 * tokens, app metadata), keyed by MSAL's own cache keys.
 */

type Section = Record<string, unknown>;
type SerializedCache = Record<string, Section | undefined>;

function parse(serialized: string | undefined): SerializedCache {
  return serialized === undefined || serialized === ''
    ? {}
    : (JSON.parse(serialized) as SerializedCache);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

function isSection(value: unknown): value is Section {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function mergeCaches(base: string | undefined, local: string, remote: string): string {
  const [baseCache, localCache, remoteCache] = [parse(base), parse(local), parse(remote)];
  const merged: SerializedCache = {};
  const sections = new Set([...Object.keys(localCache), ...Object.keys(remoteCache)]);
  for (const name of sections) {
    const [baseSection, localSection, remoteSection] = [
      baseCache[name],
      localCache[name],
      remoteCache[name],
    ];
    if (!isSection(localSection) || !isSection(remoteSection)) {
      merged[name] = localSection ?? remoteSection;
      continue;
    }
    const section: Section = {};
    const keys = new Set([
      ...Object.keys(baseSection ?? {}),
      ...Object.keys(localSection),
      ...Object.keys(remoteSection),
    ]);
    for (const key of keys) {
      const changedHere = canonical(localSection[key]) !== canonical(baseSection?.[key]);
      const value = changedHere ? localSection[key] : remoteSection[key];
      if (value !== undefined) section[key] = value;
    }
    merged[name] = section;
  }
  return JSON.stringify(merged);
}

/** True when the cache holds no account any more: its row should be deleted rather than written. */
export function hasNoAccount(serialized: string): boolean {
  const accounts = parse(serialized).Account;
  return !isSection(accounts) || Object.keys(accounts).length === 0;
}

/** The `home_account_id` of every account in a serialized cache. */
export function homeAccountIds(serialized: string): string[] {
  const accounts = parse(serialized).Account;
  if (!isSection(accounts)) return [];
  return [
    ...new Set(
      Object.values(accounts).flatMap((account) =>
        isSection(account) && typeof account.home_account_id === 'string'
          ? [account.home_account_id]
          : [],
      ),
    ),
  ];
}
