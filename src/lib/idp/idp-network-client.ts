import {
  AuthError,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from '@azure/msal-node';
import { withEndpoint } from '../http/dependency-errors';

/** What one MSAL operation's token request met, for telling an outage from a refusal. */
export interface TokenEndpointOutcome {
  /** A token request went out. */
  posted?: boolean;
  /** The HTTP status of the last token (POST) answer. */
  status?: number;
  /** Its `Retry-After`, in seconds from now. */
  retryAfterSeconds?: number;
  /** The answer was not JSON (msal-node's own client calls this `token_parsing_error`). */
  unparsable?: boolean;
  timedOut?: boolean;
  /** No request was sent: the IdP's Retry-After for this user still runs. */
  heldBackSeconds?: number;
}

/** Decides, just before a token request, whether it may go out (see `IdpBackoff`). */
export type RequestGate = () =>
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

// A number of seconds or an HTTP date (RFC 9110 section 10.2.3); past an hour it is capped, as
// MSAL caps its own throttling (ThrottlingUtils, DEFAULT_MAX_THROTTLE_TIME_SECONDS).
const MAX_RETRY_AFTER_SECONDS = 3600;

export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  const seconds = /^\d{1,9}$/.test(trimmed)
    ? Number(trimmed)
    : Math.ceil((Date.parse(trimmed) - now) / 1000);
  if (Number.isNaN(seconds)) return undefined;
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_SECONDS);
}

/**
 * MSAL's network module for one operation, over the global `fetch` (trusting what msal-node's own
 * client trusts: the system CAs plus NODE_EXTRA_CA_CERTS). It bounds every request in time, which
 * msal-node 7 does not do for POSTs (network/HttpClient.ts: `sendPostRequestAsync` passes no
 * timeout), and records what the token endpoint answered, which MSAL does not pass on: its
 * `ServerError.status` is never set on token requests, and a non-JSON answer becomes a bare
 * `token_parsing_error`.
 */
export class IdpNetworkClient implements INetworkModule {
  readonly outcome: TokenEndpointOutcome = {};
  private readonly timeoutMs: number;
  private readonly gate: RequestGate | undefined;

  constructor(timeoutMs: number, gate?: RequestGate) {
    this.timeoutMs = timeoutMs;
    this.gate = gate;
  }

  sendGetRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    return this.send<T>(url, 'GET', options);
  }

  sendPostRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    const decision = this.gate?.();
    if (decision !== undefined && !decision.allowed) {
      this.outcome.heldBackSeconds = decision.retryAfterSeconds;
      return Promise.reject(
        new AuthError('request_held_back', "the identity provider's Retry-After still runs"),
      );
    }
    this.outcome.posted = true;
    return this.send<T>(url, 'POST', options);
  }

  private async send<T>(
    url: string,
    method: 'GET' | 'POST',
    options: NetworkRequestOptions | undefined,
  ): Promise<NetworkResponse<T>> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: options?.headers ?? {},
        ...(method === 'POST' ? { body: options?.body ?? '' } : {}),
        signal,
      });
      text = await response.text();
    } catch (error) {
      // The cause and the host stay on the error, so the log can say why (describeCause).
      const failure = (message: string) =>
        withEndpoint(
          Object.assign(new AuthError('network_error', message), { cause: error }),
          new URL(url).host,
        );
      if (signal.aborted) {
        if (method === 'POST') this.outcome.timedOut = true;
        throw failure(`${method} timed out after ${this.timeoutMs} ms`);
      }
      throw failure(`${method} failed`);
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (method === 'POST') {
      this.outcome.status = response.status;
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      if (retryAfter !== undefined) this.outcome.retryAfterSeconds = retryAfter;
    }
    try {
      return { headers, status: response.status, body: JSON.parse(text) as T };
    } catch {
      if (method === 'POST') this.outcome.unparsable = true;
      throw new AuthError('token_parsing_error', `the answer to ${method} was not JSON`);
    }
  }
}
