import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import {
  horizontalOverflow,
  launchChromium,
  signIn,
  skipBrowserTests,
  watchForBreakage,
} from '../support/chromium.ts';
import { testStack, testUser } from '../support/stack.ts';

// The page's behaviours when things go wrong, in Chromium against the real stack. API failures are
// the sample API's own injected faults, scoped to this file's user (the API is shared by every
// test file); a route interception is used only where nothing on the server can make the case.

const stack = testStack();
const app = stack.appOrigin;
const tia = testUser('tia@contoso.example');
const PHONE = { width: 360, height: 640 };
const DESKTOP = { width: 1280, height: 800 };
const MAX_DESCRIPTION = 1000; // the sample API's limit (dev/todolist-api), in UTF-16 code units

async function setApiFault(fault: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${stack.api.origin}/_api/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...fault, oid: tia.oid }),
  });
  expect(response.status).toBe(204);
}

async function clearApiFaults(): Promise<void> {
  const response = await fetch(`${stack.api.origin}/_api/faults?oid=${tia.oid}`, {
    method: 'DELETE',
  });
  expect(response.status).toBe(204);
}

function todoItem(page: Page, description: string) {
  return page.getByRole('listitem').filter({ hasText: description });
}

function addInput(page: Page) {
  return page.getByRole('textbox', { name: 'New to-do' });
}

function addButton(page: Page) {
  return page.getByRole('button', { name: 'Add', exact: true });
}

/** The one live status line, once it says `text`. */
async function statusSaying(page: Page, text: string | RegExp) {
  const status = page.getByRole('status').filter({ hasText: text });
  await status.waitFor();
  return status;
}

/** The texts of every live region that says something. */
function liveMessages(page: Page): Promise<string[]> {
  return page
    .locator('[aria-live], [role=status], [role=alert], [role=log]')
    .evaluateAll((regions) =>
      regions.map((region) => region.textContent?.trim() ?? '').filter((text) => text !== ''),
    );
}

/** What the focused element is, in words a failure message can show. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (element === null || element === document.body) return 'body';
    const name = element.getAttribute('aria-label') ?? element.textContent?.trim() ?? '';
    return `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} ${name}`.trim();
  });
}

/** Whether the element is wholly inside the viewport. */
function inViewport(page: Page, selector: string): Promise<boolean> {
  return page.locator(selector).evaluate((element) => {
    const box = element.getBoundingClientRect();
    return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
  });
}

/** Whether the element's centre is the element itself, not something drawn over it. */
function uncovered(page: Page, selector: string): Promise<boolean> {
  return page.locator(selector).evaluate((element) => {
    const box = element.getBoundingClientRect();
    const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return top === element || element.contains(top);
  });
}

/** The text of the elements an input's aria-describedby points at. */
function description(page: Page, input: ReturnType<typeof addInput>): Promise<string> {
  return input.evaluate((element) =>
    (element.getAttribute('aria-describedby') ?? '')
      .split(/\s+/)
      .map((id) => document.getElementById(id)?.textContent?.trim() ?? '')
      .join(' ')
      .trim(),
  );
}

/** Replaces the user's list with these to-dos through the app's API, then loads the page. */
async function showList(page: Page, descriptions: string[]): Promise<void> {
  await page.goto(`${app}/`);
  await page.locator('#user-name', { hasText: tia.name }).waitFor();
  await page.evaluate(async (wanted) => {
    const headers = { 'X-CSRF': '1', 'Content-Type': 'application/json' };
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
      return response.status === 204 ? undefined : ((await response.json()) as unknown);
    };
    const existing = (await call('GET', '/api/todos')) as { id: string }[];
    for (const { id } of existing) await call('DELETE', `/api/todos/${id}`);
    for (const text of wanted) await call('POST', '/api/todos', { description: text });
  }, descriptions);
  await page.reload();
  const last = descriptions.at(-1);
  if (last === undefined) await page.getByText('Nothing to do yet').waitFor();
  else await todoItem(page, last).waitFor();
}

/** Adds a to-do through the form and waits until the list shows it. */
async function addTodo(page: Page, text: string): Promise<void> {
  await addInput(page).fill(text);
  await addButton(page).click();
  await todoItem(page, text).first().waitFor();
}

/** The page's requests to /api/todos with this method, as they leave the browser. */
function countRequests(page: Page, method: string): { count: () => number } {
  let count = 0;
  page.on('request', (request: Request) => {
    if (request.method() === method && new URL(request.url()).pathname.startsWith('/api/todos')) {
      count += 1;
    }
  });
  return { count: () => count };
}

/**
 * Holds the page's next `method` call to /api/todos in the browser until `release`, then lets it
 * go on to the real app. A route interception because nothing on the server can hold a call open
 * for as long as a test needs: the app gives the API TODOLIST_TIMEOUT_MS and then answers 504, so
 * an API held open would make the test race that clock.
 */
async function holdNext(
  page: Page,
  method: string,
): Promise<{ arrived: Promise<void>; release: () => void }> {
  let release!: () => void;
  let arrive!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  let held = false;
  await page.route(
    (url) => url.pathname.startsWith('/api/todos'),
    async (route) => {
      if (held || route.request().method() !== method) return route.fallback();
      held = true;
      arrive();
      await gate;
      await route.continue();
    },
  );
  return { arrived, release };
}

describe.skipIf(skipBrowserTests)('the page when things go wrong, in Chromium', () => {
  let browser: Browser;
  let signedIn: BrowserContext;
  const contexts: BrowserContext[] = [];

  /** A new tab of the signed-in browser, at this size. */
  async function newPage(size = DESKTOP): Promise<Page> {
    const page = await signedIn.newPage();
    page.setDefaultTimeout(15_000);
    await page.setViewportSize(size);
    return page;
  }

  beforeAll(async () => {
    browser = await launchChromium();
    signedIn = await browser.newContext({ ignoreHTTPSErrors: true });
    contexts.push(signedIn);
    const page = await signedIn.newPage();
    page.setDefaultTimeout(15_000);
    await signIn(page, app, tia);
    // Consent is tenant-wide: the first write after sign-in goes through as it is.
    const text = `first ${randomBytes(3).toString('hex')}`;
    await addInput(page).fill(text);
    await addButton(page).click();
    await todoItem(page, text).waitFor();
    await page.close();
  }, 60_000);

  afterEach(clearApiFaults);

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
  });

  it('wraps a 1,000-character word: the page never scrolls sideways at 360 px or 1280 px', async () => {
    const page = await newPage(PHONE);
    const problems = watchForBreakage(page, [/status of 503/]);
    await showList(page, []);
    const word = `W${'w'.repeat(MAX_DESCRIPTION - 1)}`;
    await addTodo(page, word);
    await statusSaying(page, 'Added');
    expect(await horizontalOverflow(page)).toBe(0);

    // The editor, and an error quoting the word.
    await page.getByRole('button', { name: /^Edit/ }).click();
    await setApiFault({ mode: 'status', status: 503, count: 1 });
    await page.getByRole('button', { name: 'Save' }).click();
    await statusSaying(page, 'not saved');
    expect(await horizontalOverflow(page)).toBe(0);

    await page.setViewportSize(DESKTOP);
    expect(await horizontalOverflow(page)).toBe(0);
    expect(problems).toEqual([]);
  });

  it('keeps one live status at a time: a new error replaces an old success', async () => {
    const page = await newPage();
    await showList(page, []);
    await addTodo(page, 'the first one');
    await statusSaying(page, 'Added “the first one”');

    await setApiFault({ mode: 'status', status: 503, retryAfter: 5, count: 1 });
    await addInput(page).fill('the second one');
    await addButton(page).click();
    await statusSaying(page, 'Try again in 5 seconds');
    const messages = await liveMessages(page);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain('“the second one” was not added');
    expect(messages[0]).not.toContain('Added');
  });

  it('keeps text typed during a save, in the new to-do box and in an open editor', async () => {
    const page = await newPage();
    await showList(page, ['an older one']);
    const held = await holdNext(page, 'POST');
    await addInput(page).fill('the slow one');
    await addButton(page).click();
    await held.arrived;

    await addInput(page).fill('typed meanwhile');
    await page.getByRole('button', { name: 'Edit “an older one”' }).click();
    const editor = page.getByRole('textbox', { name: 'Edit to-do' });
    await editor.fill('edited meanwhile');
    held.release();

    await todoItem(page, 'the slow one').waitFor();
    await statusSaying(page, 'Added “the slow one”');
    expect(await addInput(page).inputValue()).toBe('typed meanwhile');
    expect(await editor.inputValue()).toBe('edited meanwhile');
    expect(await focused(page)).toBe('input#edit-todo');
  });

  it('shows a visible busy state while a save is under way, and sends it once', async () => {
    const page = await newPage();
    await showList(page, []);
    const posts = countRequests(page, 'POST');
    const held = await holdNext(page, 'POST');
    await addInput(page).fill('a patient one');
    await addButton(page).click();
    await held.arrived;

    const busy = await statusSaying(page, 'Adding “a patient one”…');
    expect(await busy.isVisible()).toBe(true);
    expect(await addButton(page).getAttribute('aria-disabled')).toBe('true');
    expect(await page.locator('#add-form').getAttribute('aria-busy')).toBe('true');
    // The button keeps focus while busy, and another click sends nothing. (Playwright waits for
    // an aria-disabled button to be enabled; a person can click it anyway.)
    expect(await focused(page)).toBe('button Add');
    await addButton(page).click({ force: true });

    held.release();
    await statusSaying(page, 'Added “a patient one”');
    expect(await addButton(page).getAttribute('aria-disabled')).toBeNull();
    expect(await todoItem(page, 'a patient one').count()).toBe(1);
    expect(posts.count()).toBe(1);
  });

  it('keeps focus on the control that was used when a save or a delete fails', async () => {
    const page = await newPage();
    await showList(page, ['keep me']);

    await setApiFault({ mode: 'status', status: 503, count: 1 });
    await addInput(page).fill('not today');
    await addButton(page).click();
    await statusSaying(page, 'was not added');
    expect(await focused(page)).toBe('button Add');

    await setApiFault({ mode: 'status', status: 503, count: 1 });
    await page.getByRole('button', { name: 'Delete “keep me”' }).click();
    await statusSaying(page, 'was not deleted');
    expect(await focused(page)).toBe('button Delete “keep me”');
    expect(await todoItem(page, 'keep me').count()).toBe(1);
  });

  it('ties an error to its input and brings the status into view on a long list', async () => {
    const page = await newPage(PHONE);
    const items = Array.from({ length: 30 }, (_, index) => `Item ${index + 1}`);
    await showList(page, items);

    await page.getByRole('button', { name: 'Edit “Item 30”' }).click();
    const editor = page.getByRole('textbox', { name: 'Edit to-do' });
    await editor.fill('   ');
    await editor.press('Enter');
    const status = await statusSaying(page, /empty/);
    expect(await editor.getAttribute('aria-invalid')).toBe('true');
    const problem = await description(page, editor);
    expect(problem).toMatch(/empty/);
    expect(await status.textContent()).toContain(problem);
    expect(await focused(page)).toBe('input#edit-todo');
    expect(await inViewport(page, '[role=status]')).toBe(true);
    expect(await inViewport(page, '#edit-todo')).toBe(true);
    expect(await uncovered(page, '#edit-todo')).toBe(true);

    // Typing again clears the mark; a valid save goes through.
    await editor.fill('Item 30, done right');
    expect(await editor.getAttribute('aria-invalid')).toBeNull();
    await editor.press('Enter');
    await statusSaying(page, 'Saved “Item 30, done right”');

    // A control at the top of the window, where the notice sticks: a message about it scrolls it
    // out from under the notice. (The keyboard, as a pointer could not reach it there.)
    const deleteTen = page.getByRole('button', { name: 'Delete “Item 10”' });
    await deleteTen.evaluate((button) => button.scrollIntoView({ block: 'start' }));
    await setApiFault({ mode: 'status', status: 503, count: 1 });
    await deleteTen.focus();
    await page.keyboard.press('Enter');
    await statusSaying(page, '“Item 10” was not deleted');
    expect(await focused(page)).toBe('button Delete “Item 10”');
    expect(await inViewport(page, '[role=status]')).toBe(true);
    expect(await uncovered(page, 'li[data-id] .delete:focus')).toBe(true);
  });

  it('refuses a paste past 1,000 characters with a message instead of cutting it', async () => {
    const page = await newPage();
    await showList(page, []);
    const posts = countRequests(page, 'POST');
    const input = addInput(page);
    await input.focus();
    // Inserts text the way a paste does (a paste also stops at maxlength).
    await page.keyboard.insertText('p'.repeat(MAX_DESCRIPTION + 200));
    expect((await input.inputValue()).length).toBe(MAX_DESCRIPTION + 200);
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect(await description(page, input)).toMatch(/200 characters too long/);

    await addButton(page).click();
    await statusSaying(page, 'Not added');
    expect(posts.count()).toBe(0);
    expect(await focused(page)).toBe('input#new-todo');

    // The API's own limit is accepted.
    await input.fill('q'.repeat(MAX_DESCRIPTION));
    expect(await input.getAttribute('aria-invalid')).toBeNull();
    await addButton(page).click();
    await statusSaying(page, 'Added');
    expect(await todoItem(page, 'q'.repeat(MAX_DESCRIPTION)).count()).toBe(1);
  });

  it('offers a Retry when the list could not be loaded, and never shows a partial list', async () => {
    const page = await newPage();
    const problems = watchForBreakage(page, [/status of 502/]);
    await showList(page, ['kept A', 'kept B']);

    await setApiFault({ mode: 'down' });
    await page.reload();
    await statusSaying(page, 'could not be reached');
    const retry = page.getByRole('button', { name: 'Retry' });
    await retry.waitFor();
    expect(await page.getByText('Nothing to do yet').isVisible()).toBe(false);
    expect(await page.getByRole('listitem').count()).toBe(0);

    // An add while the list is unknown shows the whole list afterwards, not a list of one.
    await clearApiFaults();
    await addTodo(page, 'new C');
    await todoItem(page, 'kept A').waitFor();
    expect(await page.getByRole('listitem').allInnerTexts()).toEqual([
      expect.stringContaining('kept A'),
      expect.stringContaining('kept B'),
      expect.stringContaining('new C'),
    ]);
    expect(await retry.isVisible()).toBe(false);

    // Retry reloads the list and leaves focus on something that is still there.
    await setApiFault({ mode: 'down' });
    await page.reload();
    await retry.waitFor();
    await clearApiFaults();
    await retry.click();
    await todoItem(page, 'new C').waitFor();
    expect(await retry.isVisible()).toBe(false);
    expect(await focused(page)).not.toBe('body');
    expect(problems).toEqual([]);
  });

  it('says honestly that a 504 leaves the outcome unknown, and reloads the list to show it', async () => {
    const page = await newPage();
    await showList(page, ['before']);
    // Another tab adds a to-do this page does not know about yet.
    const other = await newPage();
    await showList(other, ['before', 'added elsewhere']);
    await other.close();

    await setApiFault({ mode: 'status', status: 504, count: 1 });
    await addInput(page).fill('unsure');
    await addButton(page).click();
    await statusSaying(page, 'not known whether “unsure” was added');
    await todoItem(page, 'added elsewhere').waitFor();
    expect(await todoItem(page, 'unsure').count()).toBe(0);
    expect(await addInput(page).inputValue()).toBe('unsure');

    // The same for a call that never got an answer at all. A route interception, as only the
    // browser can lose the connection to this app itself.
    await page.route(
      (url) => url.pathname === '/api/todos',
      (route) =>
        route.request().method() === 'POST' ? route.abort('connectionreset') : route.fallback(),
      { times: 1 },
    );
    await addButton(page).click();
    await statusSaying(page, 'not known whether “unsure” was added');
    expect(await page.getByRole('listitem').count()).toBe(2);

    // An edit and a delete that get a 504: the list is reloaded and still shows the old state,
    // the editor keeps what was typed.
    await setApiFault({ mode: 'status', status: 504, count: 1 });
    await page.getByRole('button', { name: 'Edit “before”' }).click();
    const editor = page.getByRole('textbox', { name: 'Edit to-do' });
    await editor.fill('before, changed');
    await editor.press('Enter');
    await statusSaying(page, 'not known whether “before, changed” was saved');
    expect(await editor.inputValue()).toBe('before, changed');
    await setApiFault({ mode: 'status', status: 504, count: 1 });
    await page.getByRole('button', { name: 'Delete “added elsewhere”' }).click();
    await statusSaying(page, 'not known whether “added elsewhere” was deleted');
    expect(await todoItem(page, 'added elsewhere').count()).toBe(1);
    expect(await focused(page)).toBe('button Delete “added elsewhere”');
  });

  it('styles the sign-in error pages with the app’s CSS and links them home', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    contexts.push(context);
    const page = await context.newPage();
    const problems = watchForBreakage(page, [/status of 400/]);
    await page.setViewportSize(PHONE);
    const response = await page.goto(`${app}/auth/redirect?code=c0de&state=${'s'.repeat(43)}`);
    expect(response?.status()).toBe(400);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');

    await page.getByRole('heading', { name: 'Sign-in did not complete' }).waitFor();
    expect(await page.getByRole('link', { name: 'Sign in again' }).isVisible()).toBe(true);
    // The app's stylesheet applies: its header bar and its button, on a phone and a desktop.
    const looks = () =>
      page.evaluate(() => ({
        header: getComputedStyle(document.querySelector('header')!).borderBottomColor,
        button: getComputedStyle(document.querySelector('a.button')!).backgroundColor,
        font: getComputedStyle(document.body).fontFamily,
      }));
    const appLooks = {
      header: 'rgb(200, 198, 196)',
      button: 'rgb(15, 108, 189)',
      font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    };
    expect(await looks()).toEqual(appLooks);
    expect(await horizontalOverflow(page)).toBe(0);
    await page.setViewportSize(DESKTOP);
    expect(await looks()).toEqual(appLooks);
    expect(await horizontalOverflow(page)).toBe(0);

    const home = page.getByRole('link', { name: 'Back to the to-do list' });
    expect(await home.getAttribute('href')).toBe('/');
    await home.click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/');
    expect(problems).toEqual([]);
  });
});
