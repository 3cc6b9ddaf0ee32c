import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { testStack } from '../support/stack.ts';

// The shared app behind the local host, which answers a request on exactly `/` that no function
// takes as the host does (HomepageMiddleware in azure-functions-host): its home page, or 204 with
// AzureWebJobsDisableHomepage, which the app's settings set.
const stack = testStack();

/** node:http, as fetch cannot send TRACE or PROPFIND. */
function request(
  method: string,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${stack.appOrigin}/`, { method, headers, agent: false });
    req.on('error', reject);
    req.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    req.end();
  });
}

describe('the page at /', () => {
  it('answers GET and HEAD with the page', async () => {
    const get = await request('GET');
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(get.body.startsWith('<!doctype html>')).toBe(true);
    const head = await request('HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.body).toBe('');
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])(
    '%s: 405 with Allow and a problem, never the host home page',
    async (method) => {
      const answer = await request(method);
      expect(answer.status).toBe(405);
      expect(answer.headers.allow).toBe('GET, HEAD');
      expect(answer.headers['content-type']).toBe('application/problem+json');
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(JSON.parse(answer.body)).toMatchObject({
        type: 'about:blank',
        status: 405,
        title: 'Method not allowed',
      });
    },
  );

  // The library cannot carry these to the handler; the host answers them with 204 as the app
  // disables its home page (AzureWebJobsDisableHomepage, HomepageMiddleware in azure-functions-host).
  it.each(['TRACE', 'PROPFIND'])("%s: the host's 204, not its home page", async (method) => {
    const answer = await request(method);
    expect(answer.status).toBe(204);
    expect(answer.body).toBe('');
    expect(answer.headers['content-type']).toBeUndefined();
  });

  it("a CORS preflight: the host's 204 before any function, not its home page", async () => {
    const answer = await request('OPTIONS', {
      origin: 'https://elsewhere.example',
      'access-control-request-method': 'POST',
    });
    expect(answer.status).toBe(204);
    expect(answer.body).toBe('');
  });
});
