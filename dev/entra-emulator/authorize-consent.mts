import type { Middleware } from 'oidc-provider';
import type { FaultInjector } from './faults.mts';
import { adminApprovalPage, respondWithPage } from './pages.mts';
import type { ClientRegistration } from './provider.mts';
import type { UserDirectory } from './users.mts';

/**
 * The authorize endpoint while the `admin_consent_missing` fault is active (for the user the
 * login_hint names, or for everyone): Entra shows its "Need admin approval" page rather than
 * redirecting, and the page's link returns to a registered redirect URI with access_denied and
 * AADSTS65004, carrying the request's state.
 */
export function adminConsentGate(options: {
  path: string;
  clients: readonly ClientRegistration[];
  users: UserDirectory;
  faults: FaultInjector;
}): Middleware {
  const { path, clients, users, faults } = options;
  return async (ctx, next) => {
    if (ctx.path !== path || ctx.method !== 'GET') return next();
    const query = new URLSearchParams(ctx.querystring);
    const oid = users.byHint(query.get('login_hint'))?.oid;
    if (!faults.isActive('admin_consent_missing', oid)) return next();

    const clientId = query.get('client_id') ?? '';
    const redirectUri = query.get('redirect_uri') ?? '';
    const registered = clients.some(
      (client) => client.clientId === clientId && client.redirectUris.includes(redirectUri),
    );
    let returnUrl: string | undefined;
    if (registered) {
      const url = new URL(redirectUri);
      url.searchParams.set('error', 'access_denied');
      url.searchParams.set(
        'error_description',
        'AADSTS65004: User declined to consent to access the app.',
      );
      const state = query.get('state');
      if (state !== null) url.searchParams.set('state', state);
      returnUrl = url.href;
    }
    respondWithPage(ctx, adminApprovalPage(clientId, returnUrl));
  };
}
