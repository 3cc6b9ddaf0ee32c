import type { Middleware, Provider } from 'oidc-provider';
import { respondWithPage, signedOutPage } from './pages.mts';

/**
 * Entra's logout endpoint: ends the emulator's own sign-in session (the one in the browser's
 * cookie) without asking for confirmation, then redirects to post_logout_redirect_uri when it is
 * one of the registered redirect URIs (Entra has no other list:
 * https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc "Send a sign-out
 * request"), or else shows a signed-out page. Tokens already issued stay valid, as in Entra.
 * logout_hint, id_token_hint and client_id are accepted and need not be sent.
 */
export function entraLogout(options: {
  path: string;
  provider: Provider;
  redirectUris: readonly string[];
}): Middleware {
  const { path, provider, redirectUris } = options;
  return async (ctx, next) => {
    if (ctx.path !== path || ctx.method !== 'GET') return next();
    const session = await provider.Session.get(ctx);
    await session.destroy();
    ctx.cookies.set(provider.cookieName('session'), null);

    const query = new URLSearchParams(ctx.querystring);
    const target = query.get('post_logout_redirect_uri');
    if (target !== null && redirectUris.includes(target)) {
      const url = new URL(target);
      const state = query.get('state');
      if (state !== null) url.searchParams.set('state', state);
      ctx.redirect(url.href);
    } else {
      respondWithPage(ctx, signedOutPage());
    }
  };
}
