import { createHash, randomBytes } from 'node:crypto';
import type { Cookie } from '@azure/functions';
import { expiredCookie, hostCookie, SESSION_COOKIE, SIGN_IN_COOKIE_PREFIX } from './cookies';
import {
  AdminConsentRequiredError,
  ClientCredentialRejectedError,
  IdpRejectedError,
  SignInRequiredError,
  UserInteractionRequiredError,
} from '../errors';
import { UnreadableSealError, type KeyRing } from '../tokens/key-ring';
import { constantTimeEquals } from '../http/request-checks';
import { claimsDigest } from './claims-request';
import { safeReturnTo } from './return-to';
import type { SignInFailure } from './sign-in-failure';
import type { SessionStore } from './session-store';
import type { TokenService } from '../tokens/token-service';

// Long enough to type a password and pass MFA, short enough that a stolen cookie goes stale fast.
const SIGN_IN_LIFETIME_SECONDS = 10 * 60;
// Bound to the cookie's name, so a sealed state copied under another sign-in's name does not open.
const SIGN_IN_ASSOCIATED_DATA = 'sign-in-cookie/v2:';
/** Sign-ins in progress in one browser (tabs); a new one beyond this drops the oldest. */
export const MAX_PENDING_SIGN_INS = 5;
/**
 * The most the sign-in cookies may add to the browser's Cookie header (`name=value; ` each). With the
 * session cookie (about 250 bytes) the app's cookies stay under 4 KB, the size browsers and
 * servers reliably accept in one header; a long `returnTo` drops older sign-ins sooner.
 */
export const SIGN_IN_COOKIES_BUDGET = 3_500;
const TAG_CHARACTERS = 16;
const OIDC_SCOPES = ['openid', 'profile', 'offline_access'];

export interface SignInSettings {
  readonly redirectUri: string;
  /**
   * The API scopes a sign-in asks for (the first configured API's read scopes). Consent is tenant-wide in External ID (an administrator
   * grants the app's API permissions), so the refresh token this sign-in gets redeems for every
   * scope of the API later: no sign-in asks for more.
   */
  readonly scopes: readonly string[];
}

export class SignInFailedError extends Error {
  readonly failure: SignInFailure;
  /** Where the user wanted to go, for the "sign in again" link. */
  readonly returnTo: string;
  /** The IdP's error code, when it sent one (e.g. `access_denied`): a short token, safe to show. */
  readonly idpError: string | undefined;
  /** Clears the failed sign-in's cookie (a state is used once), leaving other sign-ins alone. */
  readonly cookies: Cookie[];

  constructor(
    failure: SignInFailure,
    returnTo: string,
    cookies: Cookie[],
    idpError?: string,
    options?: ErrorOptions,
  ) {
    super(`sign-in failed: ${failure}`, options);
    this.name = 'SignInFailedError';
    this.failure = failure;
    this.returnTo = returnTo;
    this.cookies = cookies;
    this.idpError = idpError;
  }
}

/**
 * A sign-in with a claims request whose cookie would not fit the budget beside the session cookie
 * (a long `returnTo` with a large claims request): refused (400) rather than sent over 4 KB.
 */
export class SignInTooLargeError extends Error {
  constructor(bytes: number) {
    super(
      `the sign-in cookie would be ${bytes} bytes, over the ${SIGN_IN_COOKIES_BUDGET} bytes its cookies may take`,
    );
    this.name = 'SignInTooLargeError';
  }
}

/** What a sign-in cookie holds, sealed. State, nonce and PKCE verifier derive from `k`. */
interface SignInState {
  /** 32 random bytes, base64url: the secret the sign-in's state, nonce and verifier derive from */
  readonly k: string;
  /** returnTo */
  readonly r: string;
  /** scopes asked for */
  readonly c: string[];
  /** started, epoch milliseconds: orders the sign-ins in progress, oldest dropped first */
  readonly t: number;
  /** the claims request (a claims challenge's JSON, parsed), when the sign-in carries one */
  readonly a?: Record<string, unknown>;
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

/** One of the values a sign-in derives from its secret (domain-separated SHA-256, base64url). */
function derive(secret: string, purpose: 'state' | 'nonce' | 'verifier'): string {
  return createHash('sha256').update(`${purpose}\0${secret}`).digest('base64url');
}

/** The name of the cookie that holds the sign-in with this `state`. */
function cookieNameOf(state: string): string {
  const tag = createHash('sha256').update(state).digest('base64url').slice(0, TAG_CHARACTERS);
  return `${SIGN_IN_COOKIE_PREFIX}${tag}`;
}

/** Bytes a cookie adds to the Cookie header: `name=value; `. */
function headerBytes(name: string, value: string): number {
  return name.length + value.length + 3;
}

/** An OAuth error code is `[\x20-\x21\x23-\x5B\x5D-\x7E]+`; anything else is shown as unknown. */
function safeErrorCode(error: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : 'unknown_error';
}

/**
 * The authorization-code flow with PKCE as the confidential client: starting it (state, nonce and
 * verifier sealed in a short-lived `Lax` cookie of its own, bound to this browser) and completing it
 * (that cookie found by the `state` coming back and checked, the code redeemed, a new session
 * started). Several sign-ins may be in progress in one browser (tabs); nothing is stored
 * server-side until one completes.
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

  /**
   * `loginHint` pre-fills the user name at the IdP (Entra's `login_hint`), when it is plausible.
   * `pending` are the browser's sign-in cookies: expired or unreadable ones are cleared, and the
   * oldest beyond `MAX_PENDING_SIGN_INS` or the cookie budget are dropped. `claims` is a claims
   * request (canonical JSON, see claims-request.ts) for the authorize request and the code
   * redemption; the session started remembers its digest.
   */
  async start(
    returnTo: string | null,
    loginHint?: string | null,
    pending: ReadonlyMap<string, string> = new Map(),
    claims?: string,
  ): Promise<StartedSignIn> {
    const secret = randomBytes(32).toString('base64url');
    const state: SignInState = {
      k: secret,
      r: safeReturnTo(returnTo),
      c: [...OIDC_SCOPES, ...this.settings.scopes],
      t: this.now(),
      // Kept as parsed JSON: as a string, every quote would be escaped again in the cookie.
      ...(claims === undefined ? {} : { a: JSON.parse(claims) as Record<string, unknown> }),
    };
    const stateValue = derive(secret, 'state');
    const name = cookieNameOf(stateValue);
    const value = this.keyRing
      .seal(Buffer.from(JSON.stringify(state)), SIGN_IN_ASSOCIATED_DATA + name)
      .toString('base64url');
    const bytes = headerBytes(name, value);
    if (claims !== undefined && bytes > SIGN_IN_COOKIES_BUDGET)
      throw new SignInTooLargeError(bytes);
    const authorizeUrl = await this.tokenService.authCodeUrl({
      scopes: state.c,
      redirectUri: this.settings.redirectUri,
      state: stateValue,
      nonce: derive(secret, 'nonce'),
      codeChallenge: createHash('sha256').update(derive(secret, 'verifier')).digest('base64url'),
      ...(loginHint && /^[^\p{Cc}\s]{1,256}$/u.test(loginHint) ? { loginHint } : {}),
      ...(claims === undefined ? {} : { claims }),
    });
    return {
      authorizeUrl,
      cookies: [
        ...this.dropped(pending, bytes).map((old) => expiredCookie(old, 'Lax')),
        hostCookie(name, value, 'Lax', SIGN_IN_LIFETIME_SECONDS),
      ],
    };
  }

  /** The pending sign-in cookies to clear so that a new one of `newBytes` fits: oldest first. */
  private dropped(pending: ReadonlyMap<string, string>, newBytes: number): string[] {
    const live: { name: string; started: number; bytes: number }[] = [];
    const dropped: string[] = [];
    for (const [name, value] of pending) {
      const state = this.openState(name, value);
      if (state === undefined || this.hasExpired(state)) dropped.push(name);
      else live.push({ name, started: state.t, bytes: headerBytes(name, value) });
    }
    live.sort((a, b) => b.started - a.started);
    let bytes = newBytes;
    for (const [index, kept] of live.entries()) {
      bytes += kept.bytes;
      if (index >= MAX_PENDING_SIGN_INS - 1 || bytes > SIGN_IN_COOKIES_BUDGET) {
        dropped.push(kept.name);
      }
    }
    return dropped;
  }

  /**
   * Completes the sign-in whose `state` came back, from the browser's sign-in cookie of that state.
   * Always starts a new session (never adopts the one the browser brought, which it ends) and
   * always clears that sign-in's cookie, so a state is used once; other sign-ins in progress stay.
   */
  async complete(
    parameters: CallbackParameters,
    pending: ReadonlyMap<string, string>,
    previousSessionCookie: string | undefined,
  ): Promise<CompletedSignIn> {
    const name = parameters.state === null ? undefined : cookieNameOf(parameters.state);
    const cookie = name === undefined ? undefined : pending.get(name);
    const state =
      name === undefined || cookie === undefined ? undefined : this.openState(name, cookie);
    const returnTo = state?.r ?? '/';
    const cleared = name !== undefined && cookie !== undefined ? [expiredCookie(name, 'Lax')] : [];
    // Typed explicitly so that the compiler knows each call ends the method.
    const fail: (failure: SignInFailure, idpError?: string, cause?: unknown) => never = (
      failure,
      idpError,
      cause,
    ) => {
      throw new SignInFailedError(failure, returnTo, cleared, idpError, { cause });
    };
    if (parameters.error !== null) fail('idp_error', safeErrorCode(parameters.error));
    // No sign-in of this state here: never started in this browser, used, or dropped as the oldest;
    // with others in progress, the state matches none of them.
    if (state === undefined) {
      fail(pending.size === 0 || cookie !== undefined ? 'missing_state' : 'state_mismatch');
    }
    const secret = state.k;
    if (this.hasExpired(state)) fail('expired_state');
    if (!constantTimeEquals(parameters.state ?? '', derive(secret, 'state'))) {
      fail('state_mismatch');
    }
    if (parameters.code === null || parameters.code === '') fail('missing_code');
    const claims = state.a === undefined ? undefined : JSON.stringify(state.a);
    let user;
    try {
      user = await this.tokenService.redeemCode({
        code: parameters.code,
        codeVerifier: derive(secret, 'verifier'),
        scopes: state.c,
        redirectUri: this.settings.redirectUri,
        state: derive(secret, 'state'),
        nonce: derive(secret, 'nonce'),
        ...(claims === undefined ? {} : { claims }),
      });
    } catch (error) {
      // The app's own secret refused (wrong, expired): no retry helps until operators fix it.
      if (error instanceof ClientCredentialRejectedError) {
        fail('client_credential_rejected', undefined, error);
      }
      if (error instanceof AdminConsentRequiredError)
        fail('admin_consent_missing', undefined, error);
      // A used, expired or foreign code, or an answer MSAL refused (e.g. nonce): the user can retry.
      if (
        error instanceof SignInRequiredError ||
        error instanceof UserInteractionRequiredError ||
        error instanceof IdpRejectedError
      ) {
        fail('code_rejected', undefined, error);
      }
      // The IdP unavailable or the store failing: the caller answers 503 "try again".
      throw error;
    }
    await this.sessions.delete(previousSessionCookie);
    const created = await this.sessions.create(
      user,
      claims === undefined ? {} : { claimsDigest: claimsDigest(claims) },
    );
    return {
      returnTo,
      cookies: [
        hostCookie(SESSION_COOKIE, created.cookieValue, 'Strict', created.maxAgeSeconds),
        ...cleared,
      ],
    };
  }

  private hasExpired(state: SignInState): boolean {
    return this.now() >= state.t + SIGN_IN_LIFETIME_SECONDS * 1000;
  }

  private openState(name: string, cookie: string): SignInState | undefined {
    if (!/^[A-Za-z0-9_-]+$/.test(cookie)) return undefined;
    try {
      const opened = this.keyRing.open(
        Buffer.from(cookie, 'base64url'),
        SIGN_IN_ASSOCIATED_DATA + name,
      );
      const state = JSON.parse(opened.toString('utf8')) as Partial<SignInState>;
      const wellFormed =
        typeof state.k === 'string' &&
        typeof state.r === 'string' &&
        typeof state.t === 'number' &&
        Array.isArray(state.c) &&
        state.c.every((scope) => typeof scope === 'string') &&
        (state.a === undefined ||
          (typeof state.a === 'object' && state.a !== null && !Array.isArray(state.a)));
      return wellFormed ? { ...(state as SignInState), r: safeReturnTo(state.r) } : undefined;
    } catch (error) {
      if (error instanceof UnreadableSealError || error instanceof SyntaxError) return undefined;
      throw error;
    }
  }
}
