import { isIP } from 'node:net';
import type { KoaContext, Middleware } from 'oidc-provider';
import { parseFault, type Fault } from './faults.mts';
import type { Lifetimes } from './provider.mts';
import { readBody } from './request-body.mts';

/** What the admin API does; the emulator's handle offers the same to its own process. */
export interface AdminOperations {
  counters(): unknown;
  resetCounters(): void;
  setFault(fault: Fault): void;
  clearFaults(): void;
  setLifetimes(lifetimes: Partial<Lifetimes>): Lifetimes;
  /** The number of grants revoked, or undefined for an unknown user. */
  revokeUserGrants(oid: string): number | undefined;
  users(): unknown;
}

export const adminBasePath = '/_emulator';

const adminRoutes = [
  'GET ',
  'GET counters',
  'POST counters/reset',
  'POST faults',
  'DELETE faults',
  'POST lifetimes',
  'POST users/<oid>/revoke',
  'GET users',
];

/**
 * The emulator's control surface for test workers in other processes, under /_emulator/:
 *   GET (this list, the address `npm run dev` prints) · GET counters · POST counters/reset · POST faults (a fault as JSON) · DELETE faults ·
 *   POST lifetimes (some of accessTokenSeconds, idTokenSeconds, refreshTokenSeconds) ·
 *   POST users/<oid>/revoke · GET users
 * It has no authentication: it is a development tool and answers loopback clients only.
 */
export function adminApi(operations: AdminOperations): Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith(`${adminBasePath}/`)) return next();
    const remote = ctx.req.socket.remoteAddress ?? '';
    if (!isLoopback(remote)) {
      json(ctx, 403, { error: 'the admin API answers loopback clients only' });
      return;
    }
    const route = `${ctx.method} ${ctx.path.slice(adminBasePath.length + 1)}`;
    const revoke = /^POST users\/([^/]+)\/revoke$/.exec(route);
    try {
      if (route === 'GET ') {
        json(ctx, 200, { routes: adminRoutes.map((r) => r.replace(' ', ` ${adminBasePath}/`)) });
      } else if (route === 'GET counters') {
        json(ctx, 200, operations.counters());
      } else if (route === 'POST counters/reset') {
        operations.resetCounters();
        ctx.status = 204;
      } else if (route === 'POST faults') {
        operations.setFault(parseFault(await readJson(ctx)));
        ctx.status = 204;
      } else if (route === 'DELETE faults') {
        operations.clearFaults();
        ctx.status = 204;
      } else if (route === 'POST lifetimes') {
        json(ctx, 200, operations.setLifetimes((await readJson(ctx)) as Partial<Lifetimes>));
      } else if (revoke) {
        const revokedGrants = operations.revokeUserGrants(decodeURIComponent(revoke[1] ?? ''));
        if (revokedGrants === undefined) json(ctx, 404, { error: 'no such user' });
        else json(ctx, 200, { revokedGrants });
      } else if (route === 'GET users') {
        json(ctx, 200, operations.users());
      } else {
        json(ctx, 404, { error: `no admin route ${route}` });
      }
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof SyntaxError)) throw error;
      json(ctx, 400, { error: error.message });
    }
  };
}

async function readJson(ctx: KoaContext): Promise<unknown> {
  return JSON.parse(await readBody(ctx.req)) as unknown;
}

function json(ctx: KoaContext, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

function isLoopback(address: string): boolean {
  const ipv4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || (isIP(ipv4) === 4 && ipv4.startsWith('127.'));
}
