import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

// Debian's Chromium, driven by playwright-core (which cannot download a browser here).
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_INSTALL_HINT = 'install it with: apt-get install chromium';
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

/** Locally a missing Chromium skips the browser tests with the way to install it; on CI it fails them. */
export const skipBrowserTests = !existsSync(CHROMIUM) && !process.env.CI;
if (skipBrowserTests)
  console.warn(`browser tests skipped: ${CHROMIUM} not found; ${CHROMIUM_INSTALL_HINT}`);

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found; ${CHROMIUM_INSTALL_HINT}`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}

/**
 * What a page did that a person would see as broken: script errors and CSP violations. `expected`
 * lists the failed loads a test provokes on purpose (Chrome logs every 4xx/5xx fetch as an error).
 */
export function watchForBreakage(page: Page, expected: RegExp[] = []): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    // A 401 is how the page learns the user is signed out.
    const allowed = [/status of 401/, ...expected].some((pattern) => pattern.test(text));
    if (message.type() === 'error' && !allowed) problems.push(text);
  });
  return problems;
}

/** Signs in by clicking through the app's button and the emulator's sign-in page. */
export async function signIn(page: Page, appOrigin: string, user: { name: string }): Promise<void> {
  await page.goto(`${appOrigin}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: new RegExp(user.name) }).click();
  await page.locator('#user-name', { hasText: user.name }).waitFor();
}

/** How many CSS pixels the page is wider than its viewport (0 when it never scrolls sideways). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
}
