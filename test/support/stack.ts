import { inject } from 'vitest';

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
    readonly users: readonly { oid: string; name: string; preferred_username: string }[];
  };
  readonly api: { readonly origin: string; readonly endpoint: string };
}

export function testStack(): TestStack {
  return inject('stack');
}
