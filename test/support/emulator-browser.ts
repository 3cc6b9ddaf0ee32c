import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';

export interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTPS request that trusts `caCertPem` (the emulator's CA) and nothing else. */
export function sendTrusting(
  caCertPem: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: init.method ?? 'GET', headers: init.headers, ca: caCertPem },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(init.body);
  });
}

/** A user agent without a user: keeps the emulator's cookies and follows its redirects. */
export class EmulatorBrowser {
  readonly #cookies = new Map<string, string>();
  readonly #emulator: { readonly origin: string; readonly caCertPem: string };

  constructor(emulator: { readonly origin: string; readonly caCertPem: string }) {
    this.#emulator = emulator;
  }

  /** One request with this browser's cookies (a form is POSTed); keeps the cookies it sets. */
  async send(url: string, form?: Record<string, string>): Promise<HttpsAnswer> {
    const headers: Record<string, string> = {
      cookie: [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; '),
    };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await sendTrusting(this.#emulator.caCertPem, url, {
      method: form ? 'POST' : 'GET',
      headers,
      body: form && new URLSearchParams(form).toString(),
    });
    for (const cookie of response.headers['set-cookie'] ?? []) {
      const [pair = ''] = cookie.split(';');
      const name = pair.slice(0, pair.indexOf('=')).trim();
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  /** Follows redirects until a page is shown or the emulator sends the browser elsewhere. */
  async follow(
    url: string,
    form?: Record<string, string>,
  ): Promise<{ url: string; page: HttpsAnswer }> {
    let current = url;
    let response = await this.send(url, form);
    while (response.status >= 300 && response.status < 400) {
      current = new URL(response.headers.location ?? '', current).href;
      if (!current.startsWith(this.#emulator.origin)) break;
      response = await this.send(current);
    }
    return { url: current, page: response };
  }
}
