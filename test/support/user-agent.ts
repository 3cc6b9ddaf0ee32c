/**
 * A user agent without a user: keeps cookies per host (as browsers do, whatever the port) and
 * follows redirects one hop at a time, so tests can stop at any hop and look.
 */
export class UserAgent {
  private readonly jar = new Map<string, Map<string, string>>();

  cookies(url: string): Map<string, string> {
    const host = new URL(url).hostname;
    let cookies = this.jar.get(host);
    if (cookies === undefined) {
      cookies = new Map();
      this.jar.set(host, cookies);
    }
    return cookies;
  }

  /** One request, sending and keeping cookies, never following a redirect. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const cookies = this.cookies(url);
    const headers = new Headers(init.headers);
    if (cookies.size > 0 && !headers.has('cookie')) {
      headers.set('cookie', [...cookies].map(([name, value]) => `${name}=${value}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      const expired = /max-age=0\b/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line);
      if (value === '' || expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    return response;
  }

  /**
   * GETs `url` and follows redirects until a response is not a redirect or its target satisfies
   * `stopAt`. Resolves with the last response and, when stopped, the target it pointed at.
   */
  async navigate(
    url: string,
    stopAt: (target: string) => boolean = () => false,
    maxHops = 15,
  ): Promise<{ response: Response; location: string | undefined }> {
    let current = url;
    for (let hop = 0; hop < maxHops; hop += 1) {
      const response = await this.fetch(current);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || location === null) {
        return { response, location: undefined };
      }
      const target = new URL(location, current).href;
      await response.body?.cancel();
      if (stopAt(target)) return { response, location: target };
      current = target;
    }
    throw new Error(`more than ${maxHops} redirects from ${url}`);
  }
}
