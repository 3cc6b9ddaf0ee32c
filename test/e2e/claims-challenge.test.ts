import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, signIn, skipBrowserTests, watchForBreakage } from '../support/chromium.ts';
import { testStack, testUser } from '../support/stack.ts';

// A claims challenge from the page, in Chromium against the real stack: the shared ToDoList API is
// told to require the authentication context c1 for this file's user only
// (dev/todolist-api/claims-challenge.mts); the app answers its challenge with a loginUrl carrying
// the claims, the page offers that sign-in, the emulator asks for the step-up, and the to-dos load
// with a token whose `acrs` holds c1 (https://learn.microsoft.com/entra/identity-platform/claims-challenge).

const stack = testStack();
const app = stack.appOrigin;
const cleo = testUser('cleo@contoso.example');

async function requireClaims(requirement: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${stack.api.origin}/_api/claims-challenges`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ acrs: 'c1', path: '/api/todolist', oid: cleo.oid, ...requirement }),
  });
  expect(response.status).toBe(204);
}

/** The claims of the access tokens the ToDoList API saw for Cleo, oldest first. */
async function tokensSeen(): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${stack.api.origin}/_api/requests`);
  const requests = (await response.json()) as { headers: { authorization?: string } }[];
  return requests
    .map((request) => request.headers.authorization?.split(' ')[1])
    .filter((token): token is string => token !== undefined)
    .map((token) => decodeJwt(token))
    .filter((claims) => claims.oid === cleo.oid);
}

describe.skipIf(skipBrowserTests)('a claims challenge in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    browser = await launchChromium();
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    // Only this file's requirement goes: the API is shared by every test file.
    await fetch(`${stack.api.origin}/_api/claims-challenges`, { method: 'DELETE' });
    await context?.close();
    await browser?.close();
  });

  it('offers the step-up sign-in the API asked for, and the to-dos load with acrs in the token; a second refusal right after offers no sign-in', async () => {
    const problems = watchForBreakage(page);
    await requireClaims({});
    await signIn(page, app, cleo);

    // The to-dos cannot load: the page offers the sign-in the app's loginUrl names, with claims.
    const status = page.getByRole('status').filter({ hasText: 'could not be loaded' });
    await status.waitFor();
    const again = page.getByRole('link', { name: 'Sign in again' });
    const href = (await again.getAttribute('href')) ?? '';
    const claims = new URL(href, app).searchParams.get('claims') ?? '';
    expect(JSON.parse(Buffer.from(claims, 'base64url').toString('utf8'))).toEqual({
      access_token: { acrs: { essential: true, value: 'c1' } },
    });

    // The emulator asks for the step-up although the browser is signed in there.
    await again.click();
    await page.getByRole('button', { name: new RegExp(cleo.name) }).click();
    await page.locator('#user-name', { hasText: cleo.name }).waitFor();
    await page.getByText('Nothing to do yet.').waitFor();
    expect(await page.getByRole('link', { name: 'Sign in again' }).count()).toBe(0);
    const seen = await tokensSeen();
    expect(seen.at(-1)?.acrs).toEqual(['c1']);
    expect(seen.at(-1)?.xms_cc).toEqual(['cp1']);

    // The API now refuses whatever the token holds: right after that sign-in, no loop.
    await requireClaims({ always: true });
    await page.reload();
    await page.getByRole('status').filter({ hasText: 'signing in again would not help' }).waitFor();
    expect(await page.getByRole('link', { name: 'Sign in again' }).count()).toBe(0);
    expect(problems).toEqual([]);
  });
});
