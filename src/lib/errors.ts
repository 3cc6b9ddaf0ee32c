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
 * The user must sign in again: no tokens, a refresh token the IdP rejected, or a cache row that
 * cannot be read. The user's cache row has been removed (401 with a login URL).
 */
export class SignInRequiredError extends Error {
  readonly reason: 'no_account' | 'refresh_rejected' | 'unreadable_cache';

  constructor(reason: SignInRequiredError['reason'], options?: ErrorOptions) {
    super(`sign-in required: ${reason}`, options);
    this.name = 'SignInRequiredError';
    this.reason = reason;
  }
}

/** The user has not consented to the scopes asked for; the session and tokens stay (401 with a consent URL). */
export class ConsentRequiredError extends Error {
  readonly scopes: readonly string[];

  constructor(scopes: readonly string[], options?: ErrorOptions) {
    super(`consent required for ${scopes.join(' ')}`, options);
    this.name = 'ConsentRequiredError';
    this.scopes = scopes;
  }
}

/** The identity provider is down, slow or answering 5xx: transient (503), the tokens are kept. */
export class IdpUnavailableError extends Error {
  constructor(message = 'The identity provider is unavailable', options?: ErrorOptions) {
    super(message, options);
    this.name = 'IdpUnavailableError';
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
