import { createHash, randomBytes } from 'node:crypto';
import type { Cookie } from '@azure/functions';
import { expiredCookie, hostCookie, SESSION_COOKIE, SIGN_IN_COOKIE } from './cookies';
import { IdpRejectedError, SignInRequiredError } from './errors';
import { UnreadableSealError, type KeyRing } from './key-ring';
import type { ConsentRequest } from './login-url';
import { constantTimeEquals } from './request-checks';
import { safeReturnTo } from './return-to';
import type { SessionStore } from './session-store';
import type { TokenService } from './token-service';

// Long enough to type a password and pass MFA, short enough that a stolen cookie goes stale fast.
const SIGN_IN_LIFETIME_SECONDS = 10 * 60;
const SIGN_IN_ASSOCIATED_DATA = 'sign-in-cookie/v1';
const OIDC_SCOPES = ['openid', 'profile', 'offline_access'];

export interface SignInSettings {
  readonly redirectUri: string;
  readonly readScope: string;
  readonly readWriteScope: string;
}

/** Why a callback cannot complete a sign-in; each is answered with a "sign in again" page, no session. */
export type SignInFailure =
  | 'idp_error'
  | 'missing_state'
  | 'expired_state'
  | 'state_mismatch'
  | 'missing_code'
  | 'code_rejected';

export class SignInFailedError extends Error {
  readonly failure: SignInFailure;
  /** Where the user wanted to go, for the "sign in again" link. */
  readonly returnTo: string;
  /** The IdP's error code, when it sent one (e.g. `access_denied`): a short token, safe to show. */
  readonly idpError: string | undefined;

  constructor(failure: SignInFailure, returnTo: string, idpError?: string, options?: ErrorOptions) {
    super(`sign-in failed: ${failure}`, options);
    this.name = 'SignInFailedError';
    this.failure = failure;
    this.returnTo = returnTo;
    this.idpError = idpError;
  }
}

interface SignInState {
  /** state */
  readonly s: string;
  /** PKCE code verifier */
  readonly v: string;
  /** nonce */
  readonly n: string;
  /** returnTo */
  readonly r: string;
  /** scopes asked for */
  readonly c: string[];
  /** expiry, epoch seconds */
  readonly e: number;
}

export interface CallbackParameters {
  readonly code: string | null;
  readonly state: string | null;
  readonly error: string | null;
}

export interface StartedSignIn {
  readonly authorizeUrl: string;
  readonly cookies: Cookie[];
}

export interface CompletedSignIn {
  readonly returnTo: string;
  readonly cookies: Cookie[];
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** An OAuth error code is `[\x20-\x21\x23-\x5B\x5D-\x7E]+`; anything else is shown as unknown. */
function safeErrorCode(error: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : 'unknown_error';
}

/**
 * The authorization-code flow with PKCE as the confidential client: starting it (state, nonce and
 * verifier sealed in a short-lived `Lax` cookie bound to this browser) and completing it (the
 * cookie checked, the code redeemed, a new session started).
 */
export class SignInFlow {
  private readonly settings: SignInSettings;
  private readonly tokenService: TokenService;
  private readonly sessions: SessionStore;
  private readonly keyRing: KeyRing;
  private readonly now: () => number;

  constructor(
    settings: SignInSettings,
    tokenService: TokenService,
    sessions: SessionStore,
    keyRing: KeyRing,
    now = Date.now,
  ) {
    this.settings = settings;
    this.tokenService = tokenService;
    this.sessions = sessions;
    this.keyRing = keyRing;
    this.now = now;
  }

  /** `loginHint` pre-fills the user name at the IdP (Entra's `login_hint`), when it is plausible. */
  async start(
    returnTo: string | null,
    consent: ConsentRequest | undefined,
    loginHint?: string | null,
  ): Promise<StartedSignIn> {
    const verifier = randomToken();
    const state: SignInState = {
      s: randomToken(),
      v: verifier,
      n: randomToken(),
      r: safeReturnTo(returnTo),
      c: [
        ...OIDC_SCOPES,
        consent === 'readwrite' ? this.settings.readWriteScope : this.settings.readScope,
      ],
      e: Math.floor(this.now() / 1000) + SIGN_IN_LIFETIME_SECONDS,
    };
    const authorizeUrl = await this.tokenService.authCodeUrl({
      scopes: state.c,
      redirectUri: this.settings.redirectUri,
      state: state.s,
      nonce: state.n,
      codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
      ...(loginHint && /^[^\p{Cc}\s]{1,256}$/u.test(loginHint) ? { loginHint } : {}),
    });
    const sealed = this.keyRing.seal(Buffer.from(JSON.stringify(state)), SIGN_IN_ASSOCIATED_DATA);
    return {
      authorizeUrl,
      cookies: [
        hostCookie(SIGN_IN_COOKIE, sealed.toString('base64url'), 'Lax', SIGN_IN_LIFETIME_SECONDS),
      ],
    };
  }

  /**
   * Completes the sign-in the cookie started. Always starts a new session (never adopts the one the
   * browser brought, which it ends) and always clears the sign-in cookie, so a state is used once.
   */
  async complete(
    parameters: CallbackParameters,
    signInCookie: string | undefined,
    previousSessionCookie: string | undefined,
  ): Promise<CompletedSignIn> {
    const state = this.openState(signInCookie);
    const returnTo = state?.r ?? '/';
    if (parameters.error !== null) {
      throw new SignInFailedError('idp_error', returnTo, safeErrorCode(parameters.error));
    }
    if (state === undefined) throw new SignInFailedError('missing_state', returnTo);
    if (state.e < this.now() / 1000) throw new SignInFailedError('expired_state', returnTo);
    if (parameters.state === null || !constantTimeEquals(parameters.state, state.s)) {
      throw new SignInFailedError('state_mismatch', returnTo);
    }
    if (parameters.code === null || parameters.code === '') {
      throw new SignInFailedError('missing_code', returnTo);
    }
    let user;
    try {
      user = await this.tokenService.redeemCode({
        code: parameters.code,
        codeVerifier: state.v,
        scopes: state.c,
        redirectUri: this.settings.redirectUri,
        state: state.s,
        nonce: state.n,
      });
    } catch (error) {
      // A used, expired or foreign code, or an answer MSAL refused (e.g. nonce): the user can retry.
      if (error instanceof SignInRequiredError || error instanceof IdpRejectedError) {
        throw new SignInFailedError('code_rejected', returnTo, undefined, { cause: error });
      }
      throw error;
    }
    await this.sessions.delete(previousSessionCookie);
    const created = await this.sessions.create(user);
    return {
      returnTo,
      cookies: [
        hostCookie(SESSION_COOKIE, created.cookieValue, 'Strict', created.maxAgeSeconds),
        expiredCookie(SIGN_IN_COOKIE, 'Lax'),
      ],
    };
  }

  private openState(cookie: string | undefined): SignInState | undefined {
    if (cookie === undefined || !/^[A-Za-z0-9_-]+$/.test(cookie)) return undefined;
    try {
      const opened = this.keyRing.open(Buffer.from(cookie, 'base64url'), SIGN_IN_ASSOCIATED_DATA);
      const state = JSON.parse(opened.toString('utf8')) as Partial<SignInState>;
      const wellFormed =
        typeof state.s === 'string' &&
        typeof state.v === 'string' &&
        typeof state.n === 'string' &&
        typeof state.r === 'string' &&
        typeof state.e === 'number' &&
        Array.isArray(state.c) &&
        state.c.every((scope) => typeof scope === 'string');
      return wellFormed ? { ...(state as SignInState), r: safeReturnTo(state.r) } : undefined;
    } catch (error) {
      if (error instanceof UnreadableSealError || error instanceof SyntaxError) return undefined;
      throw error;
    }
  }
}
