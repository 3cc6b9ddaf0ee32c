import { CookieJar } from '../../dev/cookie-jar.mts';

/**
 * A user agent without a user: keeps cookies per host (as browsers do, whatever the port) and
 * follows redirects one hop at a time, so tests can stop at any hop and look.
 */
export class UserAgent {
  private readonly jar = new CookieJar();

  /** The cookies kept for the URL's host, to read or change. */
  cookies(url: string): Map<string, string> {
    return this.jar.for(url);
  }

  /** One request, sending and keeping cookies, never following a redirect. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.jar.header(url);
    if (cookie !== undefined && !headers.has('cookie')) headers.set('cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.keep(url, response.headers.getSetCookie());
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
