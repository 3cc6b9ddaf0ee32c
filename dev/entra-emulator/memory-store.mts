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
 */
export class MemoryStore {
  readonly #entries = new Map<string, Entry>();

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
        return done;
      },
      destroy: (id) => {
        this.#entries.delete(key(id));
        return done;
      },
      revokeByGrantId: (grantId) => {
        for (const [entryKey, entry] of this.#entries) {
          if (entry.model === model && entry.payload.grantId === grantId) {
            this.#entries.delete(entryKey);
          }
        }
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
