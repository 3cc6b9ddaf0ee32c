import { expect } from 'vitest';
import type { UserAgent } from './user-agent.ts';

export interface ParsedSetCookie {
  readonly name: string;
  readonly value: string;
  /** Attribute names (lower case) to their values ('' for flags). */
  readonly attributes: Record<string, string>;
}

export function parseSetCookies(response: Response): ParsedSetCookie[] {
  return response.headers.getSetCookie().map((line) => {
    const [pair = '', ...rest] = line.split(';').map((part) => part.trim());
    const separator = pair.indexOf('=');
    const attributes: Record<string, string> = {};
    for (const attribute of rest) {
      const [key = '', ...value] = attribute.split('=');
      attributes[key.toLowerCase()] = value.join('=');
    }
    return { name: pair.slice(0, separator), value: pair.slice(separator + 1), attributes };
  });
}

/**
 * Signs `username` in through the app and the emulator (login_hint, so no clicks), and resolves
 * with the app's final redirect target after the callback.
 */
export async function signInThroughApp(
  agent: UserAgent,
  appOrigin: string,
  username: string,
  returnTo = '/',
): Promise<string> {
  const start = `${appOrigin}/auth/signin?${new URLSearchParams({ returnTo, loginHint: username })}`;
  const { response, location } = await agent.navigate(
    start,
    (target) => target.startsWith(appOrigin) && !new URL(target).pathname.startsWith('/auth/'),
  );
  expect(location, `sign-in ended at ${response.status} ${response.url}`).toBeDefined();
  return location ?? '';
}
