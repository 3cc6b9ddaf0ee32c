import { request } from 'node:https';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

/**
 * An MSAL network module that trusts the given CA, for a process that cannot be started with
 * NODE_EXTRA_CA_CERTS (Node reads it only at start-up), e.g. a test worker that starts the
 * emulator itself: `system: { networkClient: createMsalNetworkClient(emulator.caCertPem) }`.
 */
export function createMsalNetworkClient(caCertPem: string): INetworkModule {
  const send = <T,>(
    url: string,
    method: 'GET' | 'POST',
    options: NetworkRequestOptions | undefined,
    timeout?: number,
  ) =>
    new Promise<NetworkResponse<T>>((resolve, reject) => {
      const outgoing = request(
        url,
        { method, headers: options?.headers, ca: caCertPem, timeout },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            try {
              resolve({
                status: response.statusCode ?? 0,
                headers: Object.fromEntries(
                  Object.entries(response.headers).map(([name, value]) => [
                    name,
                    Array.isArray(value) ? value.join(', ') : (value ?? ''),
                  ]),
                ),
                body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T,
              });
            } catch (error) {
              reject(new Error(`${method} ${url} answered with no JSON`, { cause: error }));
            }
          });
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error(`${method} ${url} timed out`)));
      outgoing.on('error', reject);
      outgoing.end(method === 'POST' ? (options?.body ?? '') : undefined);
    });

  return {
    sendGetRequestAsync: <T,>(url: string, options?: NetworkRequestOptions, timeout?: number) =>
      send<T>(url, 'GET', options, timeout),
    sendPostRequestAsync: <T,>(url: string, options?: NetworkRequestOptions) =>
      send<T>(url, 'POST', options),
  };
}
