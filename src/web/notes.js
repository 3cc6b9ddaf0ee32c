// "Your notes": the notes of a second API, which the app serves as `/api/notes` with a token of
// that API's own (the sample notes API of `npm run dev`: `GET`/`POST /notes`,
// `DELETE /notes/{id}`, notes `{ id, text }`). Started from app.js's showSignedIn only when
// `/auth/me` lists `notes` among the app's APIs, with what the page shares: the API call, busy
// marking, the page's one notice line and its field problems. The same rules as the to-dos: a
// list that could not be loaded is offered again with Retry and never shown in part; a note is
// checked against the API's limit at the input, never cut; a write whose outcome is unknown says
// so and reloads the list to show what was saved; a 401 keeps what was typed for after sign-in.

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat('en');
/** The notes API refuses a longer note, counted as JavaScript counts string length. */
const MAX_NOTE_LENGTH = 10_000;
const DRAFT_KEY = 'note-draft';
const COLLECTION = '/api/notes/notes';
/**
 * A note a 401 interrupted on the page before this sign-in, read as the page loads: one this page
 * saves itself is for the next page.
 */
const draftFromBeforeSignIn = sessionStorage.getItem(DRAFT_KEY);

/**
 * @typedef {{ api: (method: string, path: string, body?: unknown) => Promise<any>,
 *   whileBusy: (control: HTMLElement, action: () => Promise<void>) => Promise<void>,
 *   showNotice: (kind: string, message: string) => void,
 *   showFailure: (message: string, error: unknown) => void,
 *   failureReason: (error: unknown) => string,
 *   quote: (text: string) => string,
 *   setFieldProblem: (input: HTMLInputElement, problem: string | undefined) => void }} Page
 */

/** The notes as last loaded (null until they have been) and whether reloading them failed. */
const state = { /** @type {{ id: string, text: string }[] | null} */ notes: null, stale: false };

/** @param {Page} page */
export async function showNotes(page) {
  const form = $('add-note-form');
  const input = $('new-note');
  $('notes').hidden = false;
  input.addEventListener('input', () => page.setFieldProblem(input, lengthProblem(input.value)));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void add(page, form, input);
  });
  $('notes-retry').addEventListener('click', () => void retry(page));
  try {
    await load(page);
  } catch (error) {
    page.showFailure(`Your notes could not be loaded. ${page.failureReason(error)}`, error);
    return;
  }
  restoreDraft(page, input);
}

function lengthProblem(text) {
  const over = text.length - MAX_NOTE_LENGTH;
  if (over <= 0) return undefined;
  return (
    `This is ${numbers.format(over)} character${over === 1 ? '' : 's'} too long: ` +
    `a note can have at most ${numbers.format(MAX_NOTE_LENGTH)}.`
  );
}

function noteProblem(text) {
  return text.trim() === '' ? 'A note cannot be empty.' : lengthProblem(text);
}

async function load(page) {
  const list = $('note-list');
  list.setAttribute('aria-busy', 'true');
  try {
    state.notes = (await page.api('GET', COLLECTION)) ?? [];
    state.stale = false;
  } catch (error) {
    state.stale = state.notes !== null;
    throw error;
  } finally {
    list.removeAttribute('aria-busy');
    render(page);
  }
}

/** Reloads after a write whose outcome is unknown; true when it could. */
async function reloadToCheck(page) {
  try {
    await load(page);
    return true;
  } catch {
    return false;
  }
}

async function retry(page) {
  await page.whileBusy($('notes-retry'), async () => {
    page.showNotice('busy', 'Loading your notes…');
    try {
      await load(page);
      page.showNotice('success', 'Your notes are loaded.');
    } catch (error) {
      page.showFailure(`Your notes could not be loaded. ${page.failureReason(error)}`, error);
    }
  });
}

/** Brings the list in line with `state`; an item that stays keeps its element (and focus). */
function render(page) {
  const list = $('note-list');
  const notes = state.notes ?? [];
  const focusWasInList = list.contains(document.activeElement);
  const wanted = new Set(notes.map((note) => note.id));
  for (const item of [...list.children]) if (!wanted.has(item.dataset.id)) item.remove();
  let previous;
  for (const note of notes) {
    const item =
      [...list.children].find((candidate) => candidate.dataset.id === note.id) ??
      itemView(page, note);
    const position = previous ? previous.nextElementSibling : list.firstElementChild;
    if (item !== position) list.insertBefore(item, position);
    previous = item;
  }
  if (focusWasInList && !list.contains(document.activeElement)) $('notes-heading').focus();

  $('notes-empty').hidden = state.notes === null || state.stale || notes.length > 0;
  const problem =
    state.notes === null
      ? 'Your notes could not be loaded.'
      : state.stale
        ? 'Your notes could not be reloaded, so this list may be out of date.'
        : undefined;
  $('notes-problem').hidden = problem === undefined;
  $('notes-problem-text').textContent = problem ?? '';
  if (problem === undefined && document.activeElement === $('notes-retry')) {
    $('notes-heading').focus();
  }
}

function itemView(page, note) {
  const item = $('note-item').content.firstElementChild.cloneNode(true);
  item.dataset.id = note.id;
  item.querySelector('.description').textContent = note.text;
  // The button's accessible name says which note it deletes.
  item.querySelector('.label').textContent = ` note ${page.quote(note.text)}`;
  const button = item.querySelector('.delete');
  button.addEventListener('click', () => void remove(page, note, button));
  return item;
}

async function add(page, form, input) {
  const text = input.value;
  const problem = noteProblem(text);
  if (problem !== undefined) {
    page.setFieldProblem(input, problem);
    input.focus();
    page.showNotice('error', `Not added. ${problem}`);
    return;
  }
  await page.whileBusy(form, async () => {
    page.showNotice('busy', `Adding note ${page.quote(text)}…`);
    const before = new Set((state.notes ?? []).map((note) => note.id));
    let created;
    try {
      created = await page.api('POST', COLLECTION, { text });
    } catch (error) {
      if (error.outcomeUnknown) return checkAdded(page, input, text, before, error);
      if (error.field !== undefined || error.status === 400) {
        page.setFieldProblem(input, error.message);
        input.focus();
      }
      if (error.loginUrl !== undefined) sessionStorage.setItem(DRAFT_KEY, text);
      page.showFailure(
        `Note ${page.quote(text)} was not added. ${page.failureReason(error)}`,
        error,
      );
      return;
    }
    // What was typed while the call was under way stays.
    if (input.value === text) input.value = '';
    if (form.contains(document.activeElement)) input.focus();
    if (state.notes === null || state.stale) await reloadToCheck(page);
    else {
      state.notes.push(created);
      render(page);
    }
    page.showNotice('success', `Added note ${page.quote(created.text)}.`);
  });
}

/** After an add with no clear answer: reload and say what the list now shows. */
async function checkAdded(page, input, text, before, error) {
  const reason = page.failureReason(error);
  if (!(await reloadToCheck(page))) {
    page.showFailure(
      `${reason} It is not known whether note ${page.quote(text)} was added, and the notes could ` +
        'not be reloaded to check. Retry to see what is saved.',
      error,
    );
    return;
  }
  if (state.notes.some((note) => note.text === text && !before.has(note.id))) {
    if (input.value === text) input.value = '';
    page.showNotice(
      'success',
      `${reason} The notes have been reloaded: ${page.quote(text)} is among them, so it was added.`,
    );
  } else {
    page.showFailure(
      `${reason} It is not known whether note ${page.quote(text)} was added: the reloaded notes ` +
        'do not show it yet, so your text is still in the box.',
      error,
    );
  }
}

async function remove(page, note, button) {
  await page.whileBusy(button, async () => {
    page.showNotice('busy', `Deleting note ${page.quote(note.text)}…`);
    try {
      await page.api('DELETE', `${COLLECTION}/${encodeURIComponent(note.id)}`);
    } catch (error) {
      if (!error.outcomeUnknown) {
        page.showFailure(
          `Note ${page.quote(note.text)} was not deleted. ${page.failureReason(error)}`,
          error,
        );
        return;
      }
      const reason = page.failureReason(error);
      const checked = await reloadToCheck(page);
      if (checked && !state.notes.some((candidate) => candidate.id === note.id)) {
        page.showNotice(
          'success',
          `${reason} The notes have been reloaded: ${page.quote(note.text)} is no longer among them.`,
        );
      } else {
        const why = checked
          ? 'the reloaded notes still show it.'
          : 'the notes could not be reloaded.';
        page.showFailure(
          `${reason} It is not known whether note ${page.quote(note.text)} was deleted: ${why}`,
          error,
        );
      }
      return;
    }
    const index = state.notes.findIndex((candidate) => candidate.id === note.id);
    state.notes = state.notes.filter((candidate) => candidate.id !== note.id);
    render(page);
    // Focus goes to the note that took its place, or back to the section's heading.
    const next = $('note-list').children[Math.min(index, state.notes.length - 1)];
    (next?.querySelector('.delete') ?? $('notes-heading')).focus();
    page.showNotice('success', `Deleted note ${page.quote(note.text)}.`);
  });
}

/** Puts back a note that a 401 interrupted before the sign-in that loaded this page. */
function restoreDraft(page, input) {
  const draft = draftFromBeforeSignIn;
  if (draft === null) return;
  if (sessionStorage.getItem(DRAFT_KEY) === draft) sessionStorage.removeItem(DRAFT_KEY);
  if (input.value === '') input.value = draft;
  page.showNotice(
    'success',
    'The note you typed before signing in is back. Add it again to save it.',
  );
}
