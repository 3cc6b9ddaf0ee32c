import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { testStack, testUser } from '../support/stack.ts';

// Debian's Chromium, driven by playwright-core (which cannot download a browser here).
const CHROMIUM = '/usr/bin/chromium';
const INSTALL_HINT = 'install it with: apt-get install chromium';
// The flags this machine needs (see the env doc): no sandbox as root, and no background traffic
// to Google's hosts, which the closed network refuses. Playwright adds --headless and a fresh
// temporary --user-data-dir itself.
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = 'test-results/signed-in.png';
const SESSION_COOKIE = '__Host-bff-session';

const stack = testStack();
const app = stack.appOrigin;
// Users of this file alone (see TEST_USERS): sign-out ends a user's sessions everywhere.
const pia = testUser('pia@contoso.example');
const quin = testUser('quin@contoso.example');

// Locally a missing Chromium skips these tests with the way to install it; on CI it fails them.
const skip = !existsSync(CHROMIUM) && !process.env.CI;
if (skip) console.warn(`browser tests skipped: ${CHROMIUM} not found; ${INSTALL_HINT}`);

/** What a page did that a person would see as broken: script errors and CSP violations. */
function watchForBreakage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    // Chrome logs every 4xx fetch; a 401 is how the page learns the user is signed out.
    if (message.type() === 'error' && !/status of 401/.test(text)) problems.push(text);
  });
  return problems;
}

function todoItem(page: Page, description: string) {
  return page.getByRole('listitem').filter({ hasText: description });
}

/** Only the sign-in button shows: nothing of a signed-in page. */
async function expectSignedOutView(page: Page): Promise<void> {
  await page.getByRole('link', { name: 'Sign in' }).waitFor();
  for (const signedIn of [
    page.getByRole('button', { name: 'Sign out' }),
    page.getByText('Signed in as'),
    page.getByLabel('New to-do'),
  ]) {
    expect(await signedIn.isVisible()).toBe(false);
  }
}

/** Signs in by clicking through the app's button and the emulator's sign-in page. */
async function signIn(page: Page, user: { name: string }): Promise<void> {
  await page.goto(`${app}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: new RegExp(user.name) }).click();
  await page.locator('#user-name', { hasText: user.name }).waitFor();
}

/**
 * Adds a to-do through the form. The first write asks for the write scope (incremental consent):
 * the page offers "Allow changes", the IdP round trip comes back, and the typed text is restored.
 */
async function addTodo(page: Page, description: string): Promise<void> {
  const input = page.getByLabel('New to-do');
  await input.fill(description);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const added = todoItem(page, description);
  const allow = page.getByRole('status').getByRole('link', { name: 'Allow changes' });
  await added.or(allow).first().waitFor();
  if (await allow.isVisible()) {
    await allow.click();
    await page.getByRole('status').filter({ hasText: 'What you typed' }).waitFor();
    expect(await input.inputValue()).toBe(description);
    await page.getByRole('button', { name: 'Add', exact: true }).click();
  }
  await added.waitFor();
  expect(await input.inputValue()).toBe('');
}

describe.skipIf(skip)('the page in Chromium', () => {
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
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found; ${INSTALL_HINT}`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
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

    await page.getByRole('button', { name: 'Sign out' }).click();
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
});
