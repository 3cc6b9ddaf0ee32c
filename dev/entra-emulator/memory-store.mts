import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  model: string;
  id: string;
  payload: AdapterPayload;
  expiresAt: number;
}

/**
 * oidc-provider's storage, in memory, with two Entra rules the library's own memory adapter
 * cannot express:
 * - a redeemed authorization code is deleted rather than marked consumed, so a second
 *   redemption fails as "not found" (Entra's AADSTS54005) instead of making oidc-provider revoke
 *   every token the first redemption issued;
 * - a rotated refresh token is never marked consumed: Entra does not revoke the old refresh token
 *   at once, so two processes refreshing with the same token both succeed, where oidc-provider
 *   would treat the second use as a replay and revoke the whole grant.
 * One store serves every model, so a user's grants can be listed and revoked.
 *
 * With a `file`, the store starts from what the file holds and writes itself back after every
 * change, so `npm run dev` keeps its users signed in (grants, sessions, refresh tokens) across a
 * restart. Without one it lives in memory only, as the tests' emulators do.
 */
export class MemoryStore {
  readonly #entries = new Map<string, Entry>();
  readonly #file: string | undefined;
  #saveScheduled = false;

  constructor(options: { file?: string } = {}) {
    this.#file = options.file;
    if (this.#file === undefined) return;
    let saved: (Omit<Entry, 'expiresAt'> & { expiresAt: number | null })[];
    try {
      saved = JSON.parse(readFileSync(this.#file, 'utf8')) as typeof saved;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(
        `cannot read the emulator's store ${this.#file}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    for (const entry of saved) {
      // JSON has no Infinity: an entry without expiry is saved with expiresAt null.
      const expiresAt = entry.expiresAt ?? Infinity;
      this.#entries.set(`${entry.model}:${entry.id}`, { ...entry, expiresAt });
    }
    this.#dropExpired();
  }

  /** Writes the store once per turn of the event loop however many changes it made. */
  #changed(): void {
    if (this.#file === undefined || this.#saveScheduled) return;
    this.#saveScheduled = true;
    queueMicrotask(() => {
      this.#saveScheduled = false;
      this.flush();
    });
  }

  /** Writes the store to its file now (a no-op without one): a new file renamed over the old. */
  flush(): void {
    if (this.#file === undefined) return;
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
    const temporary = `${this.#file}.${process.pid}.tmp`;
    // Refresh tokens and sessions: readable by the owner only, like the keys beside them.
    writeFileSync(temporary, JSON.stringify([...this.#entries.values()]), { mode: 0o600 });
    renameSync(temporary, this.#file);
  }

  adapterFor(model: string): Adapter {
    const key = (id: string) => `${model}:${id}`;
    const find = (id: string) => this.#live(this.#entries.get(key(id)))?.payload;
    const findBy = (property: string, value: string) =>
      [...this.#entries.values()].find(
        (entry) => entry.model === model && entry.payload[property] === value && this.#live(entry),
      )?.payload;

    const done = Promise.resolve();
    return {
      upsert: (id, payload, expiresIn) => {
        this.#dropExpired();
        const expiresAt = expiresIn === undefined ? Infinity : Date.now() + expiresIn * 1000;
        this.#entries.set(key(id), { model, id, payload, expiresAt });
        this.#changed();
        return done;
      },
      find: (id) => Promise.resolve(find(id)),
      findByUid: (uid) => Promise.resolve(findBy('uid', uid)),
      findByUserCode: (userCode) => Promise.resolve(findBy('userCode', userCode)),
      consume: (id) => {
        if (model === 'AuthorizationCode') {
          this.#entries.delete(key(id));
        } else if (model !== 'RefreshToken') {
          const payload = find(id);
          if (payload) payload.consumed = Math.floor(Date.now() / 1000);
        }
        this.#changed();
        return done;
      },
      destroy: (id) => {
        this.#entries.delete(key(id));
        this.#changed();
        return done;
      },
      revokeByGrantId: (grantId) => {
        for (const [entryKey, entry] of this.#entries) {
          if (entry.model === model && entry.payload.grantId === grantId) {
            this.#entries.delete(entryKey);
          }
        }
        this.#changed();
        return done;
      },
    };
  }

  /** The live grants of an account, with the API scopes each holds by resource. */
  grantsOf(accountId: string): { grantId: string; clientId: string; resources: object }[] {
    return [...this.#entries.values()]
      .filter((entry) => entry.model === 'Grant' && entry.payload.accountId === accountId)
      .filter((entry) => this.#live(entry))
      .map((entry) => ({
        grantId: entry.id,
        clientId: String(entry.payload.clientId),
        resources: (entry.payload.resources as object | undefined) ?? {},
      }));
  }

  /** Removes a grant and every code and token issued under it. */
  revokeGrant(grantId: string): void {
    for (const [entryKey, entry] of this.#entries) {
      if (entry.payload.grantId === grantId || (entry.model === 'Grant' && entry.id === grantId)) {
        this.#entries.delete(entryKey);
      }
    }
    this.#changed();
  }

  #live(entry: Entry | undefined): Entry | undefined {
    return entry && entry.expiresAt > Date.now() ? entry : undefined;
  }

  #dropExpired(): void {
    const now = Date.now();
    for (const [entryKey, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(entryKey);
    }
  }
}
