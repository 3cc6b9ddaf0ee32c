import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_IDENTITIES, NOTES_API_SCOPES } from '../../dev/dev-settings.mts';
import { launchChromium, signIn, skipBrowserTests, watchForBreakage } from '../support/chromium.ts';
import {
  freeDevStackPorts,
  processTree,
  shareTestCa,
  startDevStack,
  type RunningDevStack,
} from '../support/dev-stack-process.ts';
import { testStack } from '../support/stack.ts';

// The page's second section, "Your notes", in Chromium against `npm run dev` as a developer runs
// it: the app configured with two APIs (`todos` and `notes`), each registered in the emulator with
// its own audience and scopes. What each sample API received (its own request log) shows that the
// app sent each one a token for that API alone.

const ALICE = { name: 'Alice Example' };

interface NotesApiRequest {
  method: string;
  target: string;
  audience?: string;
  scopes?: string;
}

describe.skipIf(skipBrowserTests)('the notes section in Chromium, on npm run dev', () => {
  let stateDir: string;
  let devStack: RunningDevStack;
  let browser: Browser;

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'notes-e2e-'));
    shareTestCa(stateDir, testStack().emulator.caCertPath);
    devStack = await startDevStack(stateDir, await freeDevStackPorts());
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (devStack !== undefined) {
      const pids = processTree(devStack.npm.pid ?? 0).map((info) => info.pid);
      devStack.npm.kill('SIGINT');
      await devStack.exited;
      // Whatever did not stop with npm (it should all have) is stopped by its pid.
      for (const pid of pids.reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return page;
  }

  async function notesApi(route: string, init?: RequestInit): Promise<Response> {
    return fetch(`http://127.0.0.1:${devStack.ports.notesApi}${route}`, init);
  }

  /**
   * Signs Alice in and waits for the page's first load of the notes, which succeeds: it is
   * answered before the API is told to fail, so a scripted answer is for a later call.
   */
  async function signInWithNotesLoaded(page: Page): Promise<void> {
    const firstLoad = page.waitForResponse(
      (response) =>
        new URL(response.url()).pathname === '/api/notes/notes' &&
        response.request().method() === 'GET',
    );
    await signIn(page, devStack.appOrigin, ALICE);
    expect((await firstLoad).status()).toBe(200);
  }

  /** The notes API's next answer: a problem with this status, title and detail. */
  async function scriptNotesProblem(
    problem: { status: number; title: string; detail: string },
    headers: Record<string, string> = {},
  ): Promise<void> {
    const scripted = await notesApi('/_api/answers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        status: problem.status,
        headers: { 'Content-Type': 'application/problem+json', ...headers },
        body: JSON.stringify(problem),
      }),
    });
    expect(scripted.status).toBe(204);
  }

  function noteItem(page: Page, text: string) {
    return page
      .getByRole('list', { name: 'Your notes' })
      .getByRole('listitem')
      .filter({ hasText: text });
  }

  it('adds, lists and deletes notes by keyboard; the notes API saw only its own audience, the ToDoList API only its own', async () => {
    const page = await newPage();
    const problems = watchForBreakage(page);
    await signIn(page, devStack.appOrigin, ALICE);
    const section = page.getByRole('region', { name: 'Your notes' });
    await section.getByText('No notes yet.').waitFor();

    // Keyboard only: type into the labelled box and press Enter.
    await section.getByRole('textbox', { name: 'New note' }).focus();
    await page.keyboard.type('Call the plumber');
    await page.keyboard.press('Enter');
    await noteItem(page, 'Call the plumber').waitFor();
    await page.getByRole('status').filter({ hasText: 'Added note “Call the plumber”' }).waitFor();
    expect(await section.getByRole('textbox', { name: 'New note' }).inputValue()).toBe('');
    await section.getByRole('textbox', { name: 'New note' }).fill('Book the dentist');
    await section.getByRole('button', { name: 'Add note' }).click();
    await noteItem(page, 'Book the dentist').waitFor();

    // An empty note is refused at the input, which says why; nothing is sent.
    const before = ((await (await notesApi('/_api/requests')).json()) as unknown[]).length;
    await section.getByRole('button', { name: 'Add note' }).click();
    const box = section.getByRole('textbox', { name: 'New note' });
    expect(await box.getAttribute('aria-invalid')).toBe('true');
    await page.getByRole('status').filter({ hasText: 'A note cannot be empty.' }).waitFor();
    expect(((await (await notesApi('/_api/requests')).json()) as unknown[]).length).toBe(before);

    // The list is the API's: a reload shows both notes, and the to-dos beside them.
    await page.reload();
    await noteItem(page, 'Book the dentist').waitFor();
    expect(await page.getByRole('list', { name: 'Your notes' }).getByRole('listitem').count()).toBe(
      2,
    );
    await page.getByRole('heading', { name: 'Your to-dos' }).waitFor();

    // Delete by keyboard: the button names its note; focus moves to the note that took its place.
    await section.getByRole('button', { name: 'Delete note “Call the plumber”' }).focus();
    await page.keyboard.press('Enter');
    await noteItem(page, 'Call the plumber').waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Deleted note “Call the plumber”' }).waitFor();
    expect(
      await page.evaluate(() => document.activeElement?.getAttribute('class')?.includes('delete')),
    ).toBe(true);

    const noteRequests = (await (await notesApi('/_api/requests')).json()) as NotesApiRequest[];
    expect(noteRequests.map(({ method }) => method)).toEqual([
      'GET',
      'POST',
      'POST',
      'GET',
      'DELETE',
    ]);
    for (const request of noteRequests) {
      expect(request.audience).toBe(DEV_IDENTITIES.notesApiClientId);
      // Reads with the read scope, writes with the write scope: a token of this API's alone.
      const wanted = request.method === 'GET' ? NOTES_API_SCOPES.read : NOTES_API_SCOPES.write;
      expect(request.scopes?.split(' ')).toContain(wanted);
      expect(request.scopes).not.toMatch(/ToDoList/);
    }
    const todoResponse = await fetch(`http://127.0.0.1:${devStack.ports.api}/_api/requests`);
    const todoRequests = (await todoResponse.json()) as {
      headers: Record<string, string | undefined>;
    }[];
    expect(todoRequests.length).toBeGreaterThanOrEqual(2);
    for (const request of todoRequests) {
      const token = decodeJwt((request.headers.authorization ?? '').replace(/^Bearer /, ''));
      expect(token.aud).toBe(DEV_IDENTITIES.apiClientId);
      expect(String(token.scp)).not.toMatch(/Notes/);
    }
    expect(problems).toEqual([]);
  }, 90_000);

  it('a list the notes API could not give is offered again with Retry, by keyboard', async () => {
    const page = await newPage();
    const problems = watchForBreakage(page, [/status of 503/]);
    // The scripted answer below is for the reload's load of the notes.
    await signInWithNotesLoaded(page);
    const section = page.getByRole('region', { name: 'Your notes' });
    await section.getByRole('textbox', { name: 'New note' }).fill('Water the plants');
    await section.getByRole('button', { name: 'Add note' }).click();
    await page.getByRole('status').filter({ hasText: 'Added note “Water the plants”' }).waitFor();
    // The notes API's next answer is a 503; the to-dos still load.
    await scriptNotesProblem(
      { title: 'Service Unavailable', status: 503, detail: 'Busy.' },
      { 'Retry-After': '3' },
    );
    await page.reload();
    await section.getByText('Your notes could not be loaded.', { exact: true }).waitFor();
    await page
      .getByRole('status')
      .filter({ hasText: 'Your notes could not be loaded. Busy. Try again in 3 seconds.' })
      .waitFor();
    await page.getByRole('heading', { name: 'Your to-dos' }).waitFor();
    expect(await section.getByText('No notes yet.').isVisible()).toBe(false);

    await section.getByRole('button', { name: 'Retry loading your notes' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Your notes are loaded.' }).waitFor();
    expect(await section.getByText('Your notes could not be loaded.').isVisible()).toBe(false);
    await noteItem(page, 'Water the plants').waitFor();
    // The Retry button went away: focus went to the section's heading, not to the page.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('notes-heading');
    expect(problems).toEqual([]);
  }, 90_000);

  it('an add with no clear answer reloads the notes and says it was not saved, keeping the text', async () => {
    const page = await newPage();
    const problems = watchForBreakage(page, [/status of 502/]);
    await signInWithNotesLoaded(page);
    // The notes API's next answer (the add) is a 502 without saving anything.
    await scriptNotesProblem({ title: 'Bad Gateway', status: 502, detail: 'Lost.' });
    const section = page.getByRole('region', { name: 'Your notes' });
    const box = section.getByRole('textbox', { name: 'New note' });
    await box.fill('Renew the passport');
    await box.press('Enter');
    await page
      .getByRole('status')
      .filter({
        hasText:
          'Lost. It is not known whether note “Renew the passport” was added: the reloaded notes do not show it yet, so your text is still in the box.',
      })
      .waitFor();
    expect(await box.inputValue()).toBe('Renew the passport');
    expect(await noteItem(page, 'Renew the passport').count()).toBe(0);
    // Sent again, it is saved once.
    await box.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Added note “Renew the passport”' }).waitFor();
    expect(await noteItem(page, 'Renew the passport').count()).toBe(1);
    expect(problems).toEqual([]);
  }, 90_000);
});
