import { inject } from 'vitest';
import { defaultTestUsers } from '../../dev/entra-emulator/users.mts';

/**
 * The shared emulator's users. Sign-out ends a user's sessions on every device, so each test file
 * that signs users in and out has users of its own, as files run in parallel against one app:
 * ada and ben (auth-flow), pia and quin (the browser test), rex and sue (log hygiene), tia (the
 * page's behaviours, whose API faults are scoped to her), cleo (the claims challenge in the browser,
 * whose API claims requirement is scoped to her).
 */
export const TEST_USERS = [
  ...defaultTestUsers,
  ...['ada', 'ben', 'cy', 'dee', 'pia', 'quin', 'rex', 'sue', 'tia', 'cleo'].map((name, index) => ({
    oid: `7e57e57e-0000-4000-8000-${String(index + 1).padStart(12, '0')}`,
    name: `${name[0]?.toUpperCase()}${name.slice(1)} Tester`,
    preferred_username: `${name}@contoso.example`,
  })),
];

/** The shared emulator's user with this user name. */
export function testUser(username: string): (typeof TEST_USERS)[number] {
  const user = TEST_USERS.find((candidate) => candidate.preferred_username === username);
  if (user === undefined) throw new Error(`no test user ${username}`);
  return user;
}

/** What the global setup started, as the tests see it. */
export interface TestStack {
  /** The app settings the shared app process runs with. */
  readonly settings: Readonly<Record<string, string>>;
  readonly appOrigin: string;
  readonly emulator: {
    readonly origin: string;
    readonly authority: string;
    readonly issuer: string;
    readonly jwksUri: string;
    readonly tenantId: string;
    readonly caCertPath: string;
    readonly caCertPem: string;
    readonly users: readonly { oid: string; name?: string; preferred_username?: string }[];
  };
  readonly api: { readonly origin: string; readonly endpoint: string };
}

export function testStack(): TestStack {
  return inject('stack');
}
