import { timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from '@azure/functions';

/**
 * Second layer of CSRF defence: a browser says where a request comes from in `Sec-Fetch-Site` and
 * `Origin`; either one naming another site refuses the request. Clients that send neither (not a
 * browser) are judged by the first layer alone.
 */
export function isSameOriginRequest(request: HttpRequest, appOrigin: string): boolean {
  const fetchSite = request.headers.get('sec-fetch-site');
  if (fetchSite !== null && fetchSite !== 'same-origin' && fetchSite !== 'none') return false;
  const origin = request.headers.get('origin');
  return origin === null || origin === appOrigin;
}

/**
 * The static header every API call and sign-out must carry: a cross-site form or image cannot set
 * it, and a cross-site script cannot send it without a CORS preflight this app never grants.
 */
export function hasCsrfHeader(request: HttpRequest): boolean {
  return request.headers.get('x-csrf') === '1';
}

export function constantTimeEquals(a: string, b: string): boolean {
  const [left, right] = [Buffer.from(a), Buffer.from(b)];
  return left.length === right.length && timingSafeEqual(left, right);
}
