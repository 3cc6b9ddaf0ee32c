import { withEndpoint } from '../http/dependency-errors';
import { IdpUnavailableError } from '../errors';

const FETCH_TIMEOUT_MS = 5_000;

/** What MSAL needs to skip discovery, plus the endpoints the app uses itself. */
export interface AuthorityMetadata {
  /** The authority as MSAL should be given it (a CIAM root authority gains its tenant segment). */
  readonly authority: string;
  /** `host[:port]` for MSAL's `knownAuthorities`, so it trusts the host without instance discovery. */
  readonly knownAuthority: string;
  /** The OpenID configuration document as JSON, for MSAL's `authorityMetadata`. */
  readonly authorityMetadata: string;
  /** For MSAL's `cloudDiscoveryMetadata`: the host is its own and only alias. */
  readonly cloudDiscoveryMetadata: string;
  readonly endSessionEndpoint: string;
}

interface OpenIdConfiguration {
  issuer?: unknown;
  authorization_endpoint?: unknown;
  token_endpoint?: unknown;
  end_session_endpoint?: unknown;
}

/**
 * `https://<sub>.ciamlogin.com/` names its tenant by the host; MSAL adds `<sub>.onmicrosoft.com/`
 * before discovery, and so must we to fetch the same document.
 */
function canonicalAuthority(authority: string): string {
  const url = new URL(authority);
  const ciam = /^([a-z0-9-]+)\.ciamlogin\.com$/i.exec(url.hostname);
  if (ciam !== null && url.pathname === '/') return `${url.origin}/${ciam[1]}.onmicrosoft.com/`;
  return authority.endsWith('/') ? authority : `${authority}/`;
}

/**
 * Fetches the authority's OpenID configuration once per process. Concurrent cold requests share the
 * one fetch; a failed fetch is forgotten so the next request tries again.
 */
export class AuthorityMetadataCache {
  private readonly authority: string;
  private readonly fetchImpl: typeof fetch;
  private pending: Promise<AuthorityMetadata> | undefined;

  constructor(authority: string, fetchImpl: typeof fetch = fetch) {
    this.authority = canonicalAuthority(authority);
    this.fetchImpl = fetchImpl;
  }

  get(): Promise<AuthorityMetadata> {
    this.pending ??= this.load().catch((error: unknown) => {
      this.pending = undefined;
      throw error;
    });
    return this.pending;
  }

  private async load(): Promise<AuthorityMetadata> {
    const url = `${this.authority}v2.0/.well-known/openid-configuration`;
    let document: OpenIdConfiguration;
    try {
      const response = await this.fetchImpl(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      document = (await response.json()) as OpenIdConfiguration;
    } catch (error) {
      throw withEndpoint(
        new IdpUnavailableError(`The authority's OpenID configuration could not be fetched`, {
          cause: error,
        }),
        new URL(this.authority).host,
      );
    }
    const { issuer, authorization_endpoint, token_endpoint, end_session_endpoint } = document;
    if (
      typeof issuer !== 'string' ||
      typeof authorization_endpoint !== 'string' ||
      typeof token_endpoint !== 'string' ||
      typeof end_session_endpoint !== 'string'
    ) {
      throw new IdpUnavailableError(
        `The authority's OpenID configuration lacks required endpoints`,
      );
    }
    const host = new URL(this.authority).host;
    return {
      authority: this.authority,
      knownAuthority: host,
      authorityMetadata: JSON.stringify(document),
      cloudDiscoveryMetadata: JSON.stringify({
        tenant_discovery_endpoint: url,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      }),
      endSessionEndpoint: end_session_endpoint,
    };
  }
}
