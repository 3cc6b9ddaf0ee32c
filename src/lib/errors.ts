/**
 * The failures the functions map to responses. None carries a token, code or secret, so each is
 * safe to log and to describe to the caller.
 */

/** Table Storage did not answer or refused: transient, the caller may retry later (503). */
export class TokenStoreUnavailableError extends Error {
  constructor(message = 'The token store is unavailable', options?: ErrorOptions) {
    super(message, options);
    this.name = 'TokenStoreUnavailableError';
  }
}

/**
 * The user must sign in again: no tokens, a refresh token the IdP rejected as dead (`bad_token`,
 * expired, revoked), or a cache row that cannot be read. The user's cache row has been removed
 * (401 with a login URL).
 */
export class SignInRequiredError extends Error {
  readonly reason: 'no_account' | 'refresh_rejected' | 'unreadable_cache';

  constructor(reason: SignInRequiredError['reason'], options?: ErrorOptions) {
    super(`sign-in required: ${reason}`, options);
    this.name = 'SignInRequiredError';
    this.reason = reason;
  }
}

/**
 * The refresh token is alive but the IdP wants the user first (MFA, Conditional Access:
 * `interaction_required`, suberror `basic_action` or `additional_action`). The tokens and the
 * session stay (401 with a login URL); signing in again satisfies the IdP.
 */
export class UserInteractionRequiredError extends Error {
  /** The claims request (JSON) the IdP named in its refusal, when it named one. */
  readonly claims: string | undefined;

  constructor(options?: ErrorOptions & { claims?: string }) {
    super('the identity provider needs the user to sign in interactively', options);
    this.name = 'UserInteractionRequiredError';
    this.claims = options?.claims;
  }
}

/**
 * The tenant has not granted this app the API's permissions (admin consent, AADSTS65001). No user
 * can fix it by signing in: an administrator must grant consent. Tokens and session stay.
 */
export class AdminConsentRequiredError extends Error {
  constructor(options?: ErrorOptions) {
    super('the tenant has not granted this app admin consent for the API (AADSTS65001)', options);
    this.name = 'AdminConsentRequiredError';
  }
}

/** The IdP refused the app's own credential (`invalid_client`: a wrong or expired secret). */
export class ClientCredentialRejectedError extends Error {
  constructor(options?: ErrorOptions) {
    super(
      "the identity provider refused the app's client credential (invalid_client): check CLIENT_SECRET",
      options,
    );
    this.name = 'ClientCredentialRejectedError';
  }
}

/**
 * The identity provider is down, slow or answering 5xx, 429 or something that is not JSON:
 * transient, the tokens are kept (503, or 504 when it did not answer in time).
 */
export class IdpUnavailableError extends Error {
  /** What the IdP's own `Retry-After` asked for, or what is left of it. */
  readonly retryAfterSeconds: number | undefined;
  readonly timedOut: boolean;

  constructor(
    message = 'The identity provider is unavailable',
    options?: ErrorOptions & { retryAfterSeconds?: number; timedOut?: boolean },
  ) {
    super(message, options);
    this.name = 'IdpUnavailableError';
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.timedOut = options?.timedOut ?? false;
  }
}

/** The identity provider refused the request for a reason other than the user's grant, e.g. a bad client secret (502). */
export class IdpRejectedError extends Error {
  readonly errorCode: string;

  constructor(errorCode: string, options?: ErrorOptions) {
    super(`The identity provider refused the request: ${errorCode}`, options);
    this.name = 'IdpRejectedError';
    this.errorCode = errorCode;
  }
}

/** A user's token cache is larger than one Table entity can hold; nothing was truncated. */
export class CacheTooLargeError extends Error {
  constructor(bytes: number, limit: number) {
    super(`the token cache is ${bytes} bytes sealed, over the ${limit} bytes a table row can hold`);
    this.name = 'CacheTooLargeError';
  }
}
