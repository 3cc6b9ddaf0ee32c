import { describe, expect, it } from 'vitest';
import { describeCause, withEndpoint } from '../../src/lib/http/dependency-errors';
import { IdpUnavailableError, TokenStoreUnavailableError } from '../../src/lib/errors';

/** A Node system error as `net`, `dns` and `tls` raise them. */
function systemError(code: string, fields: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${code} with a message that could quote a request`), {
    code,
    ...fields,
  });
}

describe('describeCause names the system error and where it went, never a message', () => {
  it('a refused connection: the address and port', () => {
    const error = new TokenStoreUnavailableError('x', {
      cause: new Error('wrapped', {
        cause: systemError('ECONNREFUSED', { address: '127.0.0.1', port: 10002 }),
      }),
    });
    expect(describeCause(error)).toBe('ECONNREFUSED 127.0.0.1:10002');
  });

  it("an AggregateError (Node's happy eyeballs) is searched too", () => {
    const aggregate = new AggregateError([
      systemError('ECONNREFUSED', { address: '::1', port: 10002 }),
    ]);
    const error = new TokenStoreUnavailableError('x', { cause: aggregate });
    expect(describeCause(error)).toBe('ECONNREFUSED ::1:10002');
  });

  it('a DNS failure: the host name', () => {
    const error = new IdpUnavailableError('x', {
      cause: new TypeError('fetch failed', {
        cause: systemError('ENOTFOUND', { hostname: 'contoso.ciamlogin.com' }),
      }),
    });
    expect(describeCause(error)).toBe('ENOTFOUND contoso.ciamlogin.com');
  });

  it('a TLS failure without a host: the endpoint the thrower knew', () => {
    const error = withEndpoint(
      new IdpUnavailableError('x', {
        cause: new TypeError('fetch failed', { cause: systemError('CERT_HAS_EXPIRED') }),
      }),
      'login.contoso.com',
    );
    expect(describeCause(error)).toBe('CERT_HAS_EXPIRED login.contoso.com');
  });

  it("MSAL's wrapped `error` is searched too", () => {
    const msalError = Object.assign(new Error('network_error'), {
      error: systemError('EAI_AGAIN', { hostname: 'contoso.ciamlogin.com' }),
    });
    expect(describeCause(new IdpUnavailableError('x', { cause: msalError }))).toBe(
      'EAI_AGAIN contoso.ciamlogin.com',
    );
  });

  it('no system error: the endpoint alone, or nothing', () => {
    const timeout = new IdpUnavailableError('x', { cause: new Error('HTTP 500') });
    expect(describeCause(timeout)).toBeUndefined();
    expect(describeCause(withEndpoint(timeout, 'id.example'))).toBe('id.example');
  });

  it('never includes a message', () => {
    const error = new TokenStoreUnavailableError('AccountKey=secret', {
      cause: systemError('ECONNRESET', { address: '10.0.0.1', port: 443 }),
    });
    expect(describeCause(error)).not.toMatch(/message|secret|request/);
  });
});
