import {
  errors,
  type Interaction,
  type InteractionResults,
  type KoaContext,
  type Middleware,
  type Provider,
} from 'oidc-provider';
import { errorPage, respondWithPage, signInPage } from './pages.mts';
import { readBody } from './request-body.mts';
import type { EmulatorUser, UserDirectory } from './users.mts';

/**
 * The sign-in page behind oidc-provider's interactions, at `<basePath>/<uid>`:
 * - a login_hint naming a test user signs that user in without the page, unless prompt=login
 *   or prompt=select_account asks for it;
 * - consent is never asked (see loadExistingGrant in provider.mts);
 * - Cancel ends the request with access_denied, which oidc-provider sends to the redirect URI.
 */
export function signInRoutes(options: {
  basePath: string;
  provider: Provider;
  users: UserDirectory;
}): Middleware {
  const { basePath, provider, users } = options;

  const finish = async (
    ctx: KoaContext,
    result: InteractionResults,
    mergeWithLastSubmission = true,
  ) => {
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission });
  };

  const signIn = async (ctx: KoaContext, interaction: Interaction, user: EmulatorUser) => {
    const previous = interaction.session;
    if (previous?.accountId !== undefined && previous.accountId !== user.sub) {
      // Entra switches accounts; oidc-provider would instead answer with a logout-confirmation
      // form. Ending the other user's session first makes this a plain sign-in.
      await (await provider.Session.findByUid(previous.uid))?.destroy();
      delete interaction.session;
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    }
    await finish(ctx, {
      login: { accountId: user.sub },
      ...(interaction.prompt.name === 'select_account' && { select_account: {} }),
    });
  };

  const show = async (ctx: KoaContext, interaction: Interaction) => {
    const { name, reasons } = interaction.prompt;
    if (name === 'consent') {
      await finish(ctx, { consent: {} });
      return;
    }
    const hinted = users.byHint(interaction.params.login_hint);
    if (name === 'login' && hinted && !reasons.includes('login_prompt')) {
      await signIn(ctx, interaction, hinted);
      return;
    }
    const action = `${basePath}/${interaction.uid}`;
    respondWithPage(
      ctx,
      signInPage({
        action,
        cancelAction: `${action}/cancel`,
        clientId: String(interaction.params.client_id),
        users: users.users,
      }),
    );
  };

  const pattern = /^\/([^/]+)(\/cancel)?$/;
  return async (ctx, next) => {
    const match = ctx.path.startsWith(`${basePath}/`)
      ? pattern.exec(ctx.path.slice(basePath.length))
      : null;
    if (!match) return next();
    const [, uid, cancel] = match;
    try {
      const interaction = await provider.interactionDetails(ctx.req, ctx.res);
      if (interaction.uid !== uid) {
        respondWithPage(ctx, errorPage('invalid_request', 'This sign-in page has expired.'), 400);
      } else if (ctx.method === 'GET' && !cancel) {
        await show(ctx, interaction);
      } else if (ctx.method === 'POST' && cancel) {
        await finish(
          ctx,
          { error: 'access_denied', error_description: 'The user canceled the sign-in.' },
          false,
        );
      } else if (ctx.method === 'POST') {
        const user = users.byOid(new URLSearchParams(await readBody(ctx.req)).get('oid') ?? '');
        if (user) await signIn(ctx, interaction, user);
        else respondWithPage(ctx, errorPage('invalid_request', 'Pick one of the users.'), 400);
      } else {
        ctx.status = 405;
      }
    } catch (error) {
      if (!(error instanceof errors.OIDCProviderError)) throw error;
      respondWithPage(ctx, errorPage(error.error, error.error_description), error.status);
    }
  };
}
