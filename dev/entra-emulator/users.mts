import { createHash } from 'node:crypto';

/**
 * A test user as configured: Entra's object id and the profile claims the user has. External ID
 * users may lack any of the optional ones: no username for a phone or social sign-in, an email
 * only, no `login_hint` claim where the app registration does not ask for it
 * (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference).
 */
export interface UserProfile {
  oid: string;
  name?: string;
  preferred_username?: string;
  email?: string;
  /** Whether the ID token carries the `login_hint` optional claim; true when left out. */
  loginHintClaim?: boolean;
  /** `email_otp`: signs in with an email one-time passcode; its refresh tokens live 24 hours. */
  signInMethod?: 'password' | 'email_otp';
}

/** A test user with the usual claims: a name and a username. */
export interface TestUser extends UserProfile {
  name: string;
  preferred_username: string;
}

/** A test user with the identifiers the emulator derives for it. */
export interface EmulatorUser extends UserProfile {
  /** The `sub` claim: opaque and different from `oid`, as in Entra. */
  sub: string;
  /** An opaque value that names the user in login_hint and logout_hint (the `login_hint` claim). */
  login_hint: string;
}

export const defaultTestUsers: readonly TestUser[] = [
  {
    oid: '5c6f3a0e-2b1d-4e8a-9f47-1a2b3c4d5e01',
    name: 'Alice Example',
    preferred_username: 'alice@contoso.example',
  },
  {
    oid: '5c6f3a0e-2b1d-4e8a-9f47-1a2b3c4d5e02',
    name: 'Bob Example',
    preferred_username: 'bob@contoso.example',
  },
];

/** How the sign-in page and logs name a user who may have no username. */
export function displayName(user: UserProfile): string {
  return user.preferred_username ?? user.email ?? user.name ?? user.oid;
}

export class UserDirectory {
  readonly users: readonly EmulatorUser[];

  constructor(users: readonly UserProfile[], tenantId: string) {
    if (users.length === 0) throw new TypeError('at least one test user is needed');
    for (const key of ['oid', 'preferred_username'] as const) {
      const values = users.flatMap((user) => user[key]?.toLowerCase() ?? []);
      if (new Set(values).size !== values.length) {
        throw new TypeError(`test users must have distinct ${key} values`);
      }
    }
    this.users = users.map((user) => ({
      ...user,
      // Entra's sub is a pairwise hash; a hash of tenant and oid keeps it stable across restarts.
      sub: createHash('sha256').update(`${tenantId}/${user.oid}`).digest('base64url'),
      login_hint: Buffer.from(JSON.stringify({ oid: user.oid, tid: tenantId })).toString(
        'base64url',
      ),
    }));
  }

  bySub(sub: string | undefined): EmulatorUser | undefined {
    return this.users.find((user) => user.sub === sub);
  }

  byOid(oid: string | undefined): EmulatorUser | undefined {
    return this.users.find((user) => user.oid.toLowerCase() === oid?.toLowerCase());
  }

  /** Resolves a login_hint or logout_hint: a username, an email, an oid or a `login_hint` value. */
  byHint(hint: unknown): EmulatorUser | undefined {
    if (typeof hint !== 'string' || hint === '') return undefined;
    const folded = hint.toLowerCase();
    return this.users.find(
      (user) =>
        user.preferred_username?.toLowerCase() === folded ||
        user.email?.toLowerCase() === folded ||
        user.oid.toLowerCase() === folded ||
        user.login_hint === hint,
    );
  }
}
