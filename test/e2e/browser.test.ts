import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  launchChromium,
  signIn as signInAs,
  skipBrowserTests,
  watchForBreakage,
} from '../support/chromium.ts';
import { testStack, testUser } from '../support/stack.ts';

const SCREENSHOT = 'test-results/signed-in.png';
const SESSION_COOKIE = '__Host-bff-session';

const stack = testStack();
const app = stack.appOrigin;
// Users of this file alone (see TEST_USERS): sign-out ends a user's sessions everywhere.
const pia = testUser('pia@contoso.example');
const quin = testUser('quin@contoso.example');

function todoItem(page: Page, description: string) {
  return page.getByRole('listitem').filter({ hasText: description });
}

/** Only the sign-in button shows: nothing of a signed-in page. */
async function expectSignedOutView(page: Page): Promise<void> {
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
  for (const signedIn of [
    page.getByRole('button', { name: 'Sign out', exact: true }),
    page.getByText('Signed in as'),
    page.getByLabel('New to-do'),
  ]) {
    expect(await signedIn.isVisible()).toBe(false);
  }
}

function signIn(page: Page, user: { name: string }): Promise<void> {
  return signInAs(page, app, user);
}

/**
 * Adds a to-do through the form. Consent is tenant-wide: the first write after sign-in goes
 * through with no extra IdP round trip.
 */
async function addTodo(page: Page, description: string): Promise<void> {
  const input = page.getByLabel('New to-do');
  await input.fill(description);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const added = todoItem(page, description);
  await added.waitFor();
  expect(await input.inputValue()).toBe('');
}

describe.skipIf(skipBrowserTests)('the page in Chromium', () => {
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  async function newPage(): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { page, context };
  }

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
  });

  it('signs in, adds, edits and deletes to-dos, keeps the session on reload, signs out for real', async () => {
    const { page, context } = await newPage();
    const problems = watchForBreakage(page);
    const tag = randomBytes(3).toString('hex');
    const milk = `Buy milk ${tag}`;
    const oatMilk = `Buy oat milk ${tag}`;
    const report = `Write the report ${tag}`;
    const plants = `Water the plants ${tag}`;

    await page.goto(`${app}/`);
    await page.getByRole('heading', { name: 'Your to-do list' }).waitFor();
    await expectSignedOutView(page);
    expect(await page.getByRole('link', { name: 'Sign in' }).getAttribute('href')).toBe(
      '/auth/signin?returnTo=%2F',
    );
    await signIn(page, pia);
    // The shared app is configured with `todos` alone (/auth/me's `apis`): no notes section. The
    // page decides it before it starts the sessions section.
    await page.getByRole('region', { name: 'Your sessions' }).waitFor();
    expect(await page.locator('#notes').isHidden()).toBe(true);

    await addTodo(page, milk);
    await addTodo(page, report);
    await addTodo(page, plants);

    // Edit with the keyboard only: the Edit button, type, Enter.
    await page.getByRole('button', { name: `Edit “${milk}”` }).focus();
    await page.keyboard.press('Enter');
    const editor = page.getByLabel('Edit to-do');
    await editor.fill(oatMilk);
    await page.keyboard.press('Enter');
    await todoItem(page, oatMilk).waitFor();
    await page
      .getByRole('status')
      .filter({ hasText: `Saved “${oatMilk}”` })
      .waitFor();
    // Escape leaves an edit without saving.
    await page.getByRole('button', { name: `Edit “${report}”` }).click();
    await editor.fill('not saved');
    await page.keyboard.press('Escape');
    await todoItem(page, report).waitFor();
    expect(await todoItem(page, 'not saved').count()).toBe(0);

    await page.getByRole('button', { name: `Delete “${plants}”` }).click();
    await todoItem(page, plants).waitFor({ state: 'detached' });

    await page.reload();
    await page.locator('#user-name', { hasText: pia.name }).waitFor();
    await todoItem(page, oatMilk).waitFor();
    await todoItem(page, report).waitFor();
    expect(await todoItem(page, milk).count()).toBe(0);
    expect(await todoItem(page, plants).count()).toBe(0);

    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    const cookie = (await context.cookies(app)).find(({ name }) => name === SESSION_COOKIE);
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    // The page's script cannot read the session cookie.
    expect(await page.evaluate(() => document.cookie)).not.toContain(SESSION_COOKIE);

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    await expectSignedOutView(page);
    expect(new URL(page.url()).origin).toBe(app);
    expect(await page.evaluate(() => fetch('/auth/me').then((response) => response.status))).toBe(
      401,
    );
    const oldCookie = `${SESSION_COOKIE}=${cookie?.value ?? ''}`;
    expect((await fetch(`${app}/auth/me`, { headers: { cookie: oldCookie } })).status).toBe(401);
    const api = await fetch(`${app}/api/todos`, { headers: { cookie: oldCookie, 'x-csrf': '1' } });
    expect(api.status).toBe(401);

    expect(problems).toEqual([]);
  }, 90_000);

  it('a second user sees only their own list', async () => {
    const first = await newPage();
    const tag = randomBytes(3).toString('hex');
    await signIn(first.page, pia);
    await addTodo(first.page, `Pia's private to-do ${tag}`);

    const second = await newPage();
    const problems = watchForBreakage(second.page);
    await signIn(second.page, quin);
    await addTodo(second.page, `Quin's own to-do ${tag}`);
    await second.page.reload();
    await todoItem(second.page, `Quin's own to-do ${tag}`).waitFor();
    expect(await second.page.getByRole('listitem').allInnerTexts()).not.toContainEqual(
      expect.stringContaining('Pia'),
    );
    expect(problems).toEqual([]);
  }, 90_000);

  it('lists sessions, ends another device by keyboard, and signs out everywhere', async () => {
    const laptop = await newPage();
    const phone = await newPage();
    const problems = watchForBreakage(laptop.page);
    await signIn(phone.page, quin);
    await signIn(laptop.page, quin);

    const section = laptop.page.getByRole('region', { name: 'Your sessions' });
    const sessions = section
      .getByRole('table', { name: 'Your sessions' })
      .getByRole('rowgroup')
      .nth(1)
      .getByRole('row');
    await sessions.nth(1).waitFor();
    expect(await sessions.count()).toBeGreaterThanOrEqual(2);
    // This device comes first, named so; each End button says which session it ends.
    expect(await sessions.first().innerText()).toContain('This device');
    expect(await sessions.first().locator('time').first().getAttribute('datetime')).toMatch(
      /^\d{4}-\d{2}-\d{2}T/,
    );
    const others = section.getByRole('button', { name: /^End the session signed in / });
    const before = await others.count();
    expect(before).toBeGreaterThanOrEqual(1);

    // Keyboard only: focus the newest other session's End button and press Enter. The phone
    // signed in just before the laptop, so it is the first "other" one.
    await others.first().focus();
    await laptop.page.keyboard.press('Enter');
    await laptop.page.getByRole('status').filter({ hasText: 'The session was ended' }).waitFor();
    expect(await others.count()).toBe(before - 1);
    // Focus stayed in the section for the next action.
    expect(
      await laptop.page.evaluate(() => document.activeElement?.closest('#sessions') !== null),
    ).toBe(true);
    await phone.page.reload();
    await expectSignedOutView(phone.page);

    // The phone signs in again (its IdP session is still there: no account to pick); "Sign out
    // everywhere" on the laptop ends it too.
    await phone.page.getByRole('link', { name: 'Sign in' }).click();
    await phone.page.locator('#user-name', { hasText: quin.name }).waitFor();
    await laptop.page.reload();
    await section.getByRole('button', { name: 'Sign out everywhere' }).click();
    await laptop.page.getByRole('link', { name: 'Sign in' }).waitFor();
    await expectSignedOutView(laptop.page);
    await phone.page.reload();
    await expectSignedOutView(phone.page);
    expect(problems).toEqual([]);
  }, 90_000);
});
