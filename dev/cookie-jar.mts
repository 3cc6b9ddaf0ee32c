// Shared by the tests' user agent and the benchmark's clients.

/**
 * A browser's cookies for one user: per host name whatever the port, as browsers keep them (so a
 * session cookie set by one app process on localhost goes to every process on localhost).
 */
export class CookieJar {
  private readonly jar = new Map<string, Map<string, string>>();

  /** The cookies kept for the URL's host, to read or change. */
  for(url: URL | string): Map<string, string> {
    const { hostname } = typeof url === 'string' ? new URL(url) : url;
    let cookies = this.jar.get(hostname);
    if (cookies === undefined) {
      cookies = new Map();
      this.jar.set(hostname, cookies);
    }
    return cookies;
  }

  get(hostname: string, name: string): string | undefined {
    return this.jar.get(hostname)?.get(name);
  }

  header(url: URL | string): string | undefined {
    const cookies = this.for(url);
    return cookies.size === 0
      ? undefined
      : [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  /** Keeps what the `Set-Cookie` lines set, and drops what they expire. */
  keep(url: URL | string, setCookie: readonly string[] | undefined): void {
    const cookies = this.for(url);
    for (const line of setCookie ?? []) {
      const [pair = ''] = line.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      const expired = /max-age=0\b/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line);
      if (value === '' || expired) cookies.delete(name);
      else cookies.set(name, value);
    }
  }
}
