// The page's script. It never sees a token: the session cookie is HttpOnly and every API call
// goes to this app's own /api routes, which attach the token on the server.
//
// Parts, in order: calling the API; the one live status line (the notice); busy controls and
// field problems; the to-do list section; signing in and out; start-up. A new section of the
// signed-in page gets its own module (sessions.js, notes.js) and is started from showSignedIn.

import { showNotes } from './notes.js';
import { showSessions } from './sessions.js';

const DRAFT_KEY = 'todo-draft';
const DEFAULT_LOGIN_URL = '/auth/signin?returnTo=%2F';
/** The ToDoList API refuses a longer description, counted as JavaScript counts string length. */
const MAX_DESCRIPTION_LENGTH = 1000;
/** Longer descriptions are shortened when quoted in a message. */
const QUOTE_LENGTH = 60;

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat('en');

// ---------------------------------------------------------------------------------------------
// Calling the API

class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number, loginUrl?: string, field?: string, outcomeUnknown?: boolean }} details
   *   `loginUrl` is set when signing in (again) would let the call succeed; `field` names the input
   *   the API refused; `outcomeUnknown` means a write may or may not have happened.
   */
  constructor(message, details = {}) {
    super(message);
    this.status = details.status;
    this.loginUrl = details.loginUrl;
    this.field = details.field;
    this.outcomeUnknown = details.outcomeUnknown ?? false;
  }
}

/** Where a 401 sends the user to sign in: its `loginUrl`, the default one if it is no problem. */
function loginUrlOf(problem) {
  if (typeof problem?.loginUrl === 'string') return problem.loginUrl;
  return problem?.type === undefined ? DEFAULT_LOGIN_URL : undefined;
}

/** The message of a problem details answer, in words a person can act on. */
function describeProblem(response, problem) {
  const validation = problem?.errors && Object.values(problem.errors).flat()[0];
  let message =
    validation || problem?.detail || problem?.title || `The request failed (${response.status}).`;
  const retryAfter = response.headers.get('Retry-After');
  if (retryAfter && /^\d+$/.test(retryAfter)) {
    message += ` Try again in ${retryAfter} second${retryAfter === '1' ? '' : 's'}.`;
  }
  return message;
}

/**
 * Whether a failed write may still have happened: no answer at all, or the app or the API gave up
 * on it (500, 502, 504) after the API may have carried it out.
 */
function isOutcomeUnknown(method, status) {
  return method !== 'GET' && (status === undefined || [500, 502, 504].includes(status));
}

/** Calls this app's API; resolves with the JSON body, or throws an ApiError to show. */
async function api(method, path, body) {
  const headers = { 'X-CSRF': '1', Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError('The app could not be reached. Check your connection and try again.', {
      outcomeUnknown: isOutcomeUnknown(method, undefined),
    });
  }
  const text = await response.text();
  let data;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (response.ok) return data;
  const field = data?.errors && Object.keys(data.errors)[0];
  throw new ApiError(describeProblem(response, data), {
    status: response.status,
    // A 401 problem without a loginUrl says signing in again would not help (an API that keeps
    // refusing after a claims-challenge sign-in): no sign-in is offered then.
    loginUrl: response.status === 401 ? loginUrlOf(data) : undefined,
    field: response.status === 400 ? field : undefined,
    outcomeUnknown: isOutcomeUnknown(method, response.status),
  });
}

// ---------------------------------------------------------------------------------------------
// The notice: one live status line for the whole page

const notice = $('notice');

/**
 * Replaces whatever the notice said. `kind` is busy, success or error; `action` is an optional
 * link or button offered with it. A control that had focus inside the notice hands it to the new
 * action, so focus never drops to the page.
 */
function showNotice(kind, message, action) {
  const focusWasInside = notice.contains(document.activeElement);
  const text = document.createElement('p');
  text.textContent = message;
  notice.className = `notice ${kind}`;
  notice.replaceChildren(text, ...(action ? [action] : []));
  if (focusWasInside) (action ?? $('todos-heading')).focus();
  keepClearOfNotice(document.activeElement);
}

/**
 * The notice sticks to the top of the window; if it now covers the control in use, scroll that
 * control down from under it, so both the message and the control are in view.
 */
function keepClearOfNotice(element) {
  if (!(element instanceof HTMLElement) || notice.childElementCount === 0) return;
  const cover = notice.getBoundingClientRect();
  const box = element.getBoundingClientRect();
  if (box.top < cover.bottom && box.bottom > cover.top) {
    window.scrollBy(0, box.top - cover.bottom - 8);
  }
}

/** A description as quoted in a message: in quotes, shortened when long. */
function quote(description) {
  const short =
    description.length > QUOTE_LENGTH ? `${description.slice(0, QUOTE_LENGTH)}…` : description;
  return `“${short}”`;
}

/** Shows a failed call: a 401 also keeps what the user typed and offers to sign in again. */
function showFailure(message, error) {
  if (!(error instanceof ApiError)) console.error(error);
  if (error instanceof ApiError && error.loginUrl !== undefined) {
    saveDraft();
    const link = document.createElement('a');
    link.href = error.loginUrl;
    link.className = 'button';
    link.textContent = 'Sign in again';
    showNotice('error', message, link);
    return;
  }
  showNotice('error', message);
}

/** What a failed call said, for a message that starts with what did not happen. */
function failureReason(error) {
  return error instanceof ApiError ? error.message : 'Something went wrong.';
}

// ---------------------------------------------------------------------------------------------
// Busy controls and field problems

/**
 * Runs `action` with `control` (a form or a button) marked busy: the button (the form's submit
 * button) says so to assistive technology and further clicks are ignored, but it stays focusable, so focus stays where the person left it
 * (a disabled button drops focus to the page). Does nothing when already busy.
 */
async function whileBusy(control, action) {
  if (control.getAttribute('aria-busy') === 'true') return;
  const buttons =
    control instanceof HTMLButtonElement
      ? [control]
      : control.querySelectorAll('button[type="submit"]');
  control.setAttribute('aria-busy', 'true');
  buttons.forEach((button) => button.setAttribute('aria-disabled', 'true'));
  try {
    await action();
  } finally {
    control.removeAttribute('aria-busy');
    buttons.forEach((button) => button.removeAttribute('aria-disabled'));
  }
}

/** What is wrong with a description's length, or undefined. */
function lengthProblem(description) {
  const over = description.length - MAX_DESCRIPTION_LENGTH;
  if (over <= 0) return undefined;
  return (
    `This is ${numbers.format(over)} character${over === 1 ? '' : 's'} too long: ` +
    `a to-do can have at most ${numbers.format(MAX_DESCRIPTION_LENGTH)}.`
  );
}

/** What is wrong with a description, or undefined; the same rules as the ToDoList API's. */
function descriptionProblem(description) {
  return description.trim() === '' ? 'A to-do cannot be empty.' : lengthProblem(description);
}

/** Marks an input as invalid with `problem` (its aria-describedby text), or clears the mark. */
function setFieldProblem(input, problem) {
  const element = $(input.getAttribute('aria-describedby'));
  if (problem === undefined) {
    input.removeAttribute('aria-invalid');
    element.textContent = '';
    element.hidden = true;
  } else {
    input.setAttribute('aria-invalid', 'true');
    element.textContent = problem;
    element.hidden = false;
  }
}

/**
 * Checks an input while the person types or pastes: only the length, as an empty box is not an
 * error until it is submitted. Nothing is cut: a paste past the limit stays, marked, to be edited.
 */
function watchLength(input) {
  input.addEventListener('input', () => setFieldProblem(input, lengthProblem(input.value)));
}

/** The problem with a description about to be sent, shown at the input, which gets focus. */
function refuseInvalid(input, description, verb) {
  const problem = descriptionProblem(description);
  if (problem === undefined) return false;
  setFieldProblem(input, problem);
  input.focus();
  showNotice('error', `Not ${verb}. ${problem}`);
  return true;
}

/** An API refusal of the description is shown at the input too. */
function markRefusedField(input, error) {
  if (error instanceof ApiError && error.field !== undefined) {
    setFieldProblem(input, error.message);
    input.focus();
  }
}

// ---------------------------------------------------------------------------------------------
// The to-do list section

const addForm = $('add-form');
const addInput = $('new-todo');
const list = $('todo-list');

/**
 * The list as last loaded: `todos` is null until it has been; `stale` is set when loading it again
 * failed. Either way the page says so and offers Retry, and a change reloads the whole list
 * instead of showing a part of it as the whole.
 */
const state = {
  /** @type {{ id: string, description: string }[] | null} */
  todos: null,
  stale: false,
};
/** The item being edited ({ id, input }), so a 401 can keep what was typed into it. */
let editing;

function cloneTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

function findTodo(id) {
  return state.todos?.find((todo) => todo.id === id);
}

function itemElement(id) {
  return [...list.children].find((item) => item.dataset.id === id);
}

function itemView(todo) {
  const item = cloneTemplate('todo-item');
  item.dataset.id = todo.id;
  showDescription(item, todo.description);
  item.querySelector('.edit').addEventListener('click', () => startEditing(todo.id));
  item
    .querySelector('.delete')
    .addEventListener('click', (event) => void remove(todo.id, event.currentTarget));
  return item;
}

function showDescription(item, description) {
  item.querySelector('.description').textContent = description;
  // Each button's accessible name says which to-do it acts on.
  item.querySelectorAll('.label').forEach((label) => {
    label.textContent = ` ${quote(description)}`;
  });
}

/**
 * Brings the list in line with `state`, item by item: items that did not change keep their
 * element, so focus and an open editor (with what was typed into it) survive a reload.
 */
function render() {
  const todos = state.todos ?? [];
  const focusWasInList = list.contains(document.activeElement);
  const wanted = new Set(todos.map((todo) => todo.id));
  for (const item of [...list.children]) {
    if (!wanted.has(item.dataset.id)) {
      if (editing?.id === item.dataset.id) editing = undefined;
      item.remove();
    }
  }
  let previous;
  for (const todo of todos) {
    let item = itemElement(todo.id);
    if (item === undefined) item = itemView(todo);
    else if (!item.classList.contains('editing')) showDescription(item, todo.description);
    const position = previous ? previous.nextElementSibling : list.firstElementChild;
    if (item !== position) list.insertBefore(item, position);
    previous = item;
  }
  if (focusWasInList && !list.contains(document.activeElement)) $('todos-heading').focus();

  $('empty').hidden = state.todos === null || state.stale || todos.length > 0;
  const problem =
    state.todos === null
      ? 'Your to-dos could not be loaded.'
      : state.stale
        ? 'Your to-dos could not be reloaded, so this list may be out of date.'
        : undefined;
  $('list-problem').hidden = problem === undefined;
  $('list-problem-text').textContent = problem ?? '';
  if (problem === undefined && document.activeElement === $('retry')) {
    $('todos-heading').focus();
  }
}

/** Loads the whole list; on failure the list is marked as not known (or out of date). */
async function loadTodos() {
  list.setAttribute('aria-busy', 'true');
  try {
    state.todos = (await api('GET', '/api/todos')) ?? [];
    state.stale = false;
  } catch (error) {
    state.stale = state.todos !== null;
    throw error;
  } finally {
    list.removeAttribute('aria-busy');
    render();
  }
}

/** Reloads the list after a change whose outcome is unknown; true when it could. */
async function reloadToCheck() {
  try {
    await loadTodos();
    return true;
  } catch {
    return false;
  }
}

async function retryLoading() {
  const retry = $('retry');
  await whileBusy(retry, async () => {
    showNotice('busy', 'Loading your to-dos…');
    try {
      await loadTodos();
      showNotice('success', 'Your to-dos are loaded.');
    } catch (error) {
      showFailure(`Your to-dos could not be loaded. ${failureReason(error)}`, error);
    }
  });
}

function startEditing(id, text) {
  const todo = findTodo(id);
  const current = itemElement(id);
  if (!todo || !current) return;
  if (editing) stopEditing();
  const editor = cloneTemplate('todo-editor');
  editor.dataset.id = id;
  const form = editor.querySelector('form');
  const input = editor.querySelector('input');
  const problem = editor.querySelector('.field-problem');
  input.id = `edit-todo`;
  problem.id = 'edit-todo-problem';
  input.setAttribute('aria-describedby', problem.id);
  editor.querySelector('label').htmlFor = input.id;
  input.value = text ?? todo.description;
  watchLength(input);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void save(id, form, input);
  });
  editor.querySelector('.cancel').addEventListener('click', () => stopEditing(true));
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') stopEditing(true);
  });
  current.replaceWith(editor);
  editing = { id, input };
  input.focus();
  input.select();
}

/** Closes the editor without saving; a person who cancelled gets focus back on Edit. */
function stopEditing(restoreFocus = false) {
  const id = editing?.id;
  const todo = findTodo(id);
  const editor = id === undefined ? undefined : itemElement(id);
  editing = undefined;
  if (!todo || !editor) return;
  const item = itemView(todo);
  const hadFocus = editor.contains(document.activeElement);
  editor.replaceWith(item);
  if (restoreFocus || hadFocus) item.querySelector('.edit').focus();
}

async function add() {
  const description = addInput.value;
  if (refuseInvalid(addInput, description, 'added')) return;
  await whileBusy(addForm, async () => {
    showNotice('busy', `Adding ${quote(description)}…`);
    let created;
    try {
      created = await api('POST', '/api/todos', { description });
    } catch (error) {
      if (error.outcomeUnknown) return checkAdded(description, error);
      markRefusedField(addInput, error);
      showFailure(`${quote(description)} was not added. ${failureReason(error)}`, error);
      return;
    }
    // What was typed while the call was under way stays.
    if (addInput.value === description) addInput.value = '';
    if (addForm.contains(document.activeElement)) addInput.focus();
    if (state.todos === null || state.stale) await reloadToCheck();
    else {
      state.todos.push(created);
      render();
    }
    showNotice('success', `Added ${quote(created.description)}.`);
  });
}

/** After an add with no clear answer: reload and say what the list now shows. */
async function checkAdded(description, error) {
  const before = new Set((state.todos ?? []).map((todo) => todo.id));
  const reason = failureReason(error);
  if (!(await reloadToCheck())) {
    showFailure(
      `${reason} It is not known whether ${quote(description)} was added, and the list could ` +
        'not be reloaded to check. Retry to see what is saved.',
      error,
    );
    return;
  }
  const added = state.todos.some(
    (todo) => todo.description === description && !before.has(todo.id),
  );
  if (added) {
    if (addInput.value === description) addInput.value = '';
    showNotice(
      'success',
      `${reason} The list has been reloaded: ${quote(description)} is in it, so it was added.`,
    );
  } else {
    showFailure(
      `${reason} It is not known whether ${quote(description)} was added: the reloaded list does ` +
        'not show it yet, so your text is still in the box.',
      error,
    );
  }
}

async function save(id, form, input) {
  const todo = findTodo(id);
  const description = input.value;
  if (!todo || refuseInvalid(input, description, 'saved')) return;
  await whileBusy(form, async () => {
    showNotice('busy', `Saving ${quote(description)}…`);
    let updated;
    try {
      updated = await api('PATCH', `/api/todos/${encodeURIComponent(id)}`, { description });
    } catch (error) {
      if (error.outcomeUnknown) return checkSaved(todo, description, error);
      markRefusedField(input, error);
      showFailure(`${quote(description)} was not saved. ${failureReason(error)}`, error);
      return;
    }
    state.todos = state.todos.map((candidate) => (candidate.id === id ? updated : candidate));
    // A change typed while saving keeps the editor open with it.
    if (input.value === description) stopEditing();
    render();
    showNotice('success', `Saved ${quote(updated.description)}.`);
  });
}

async function checkSaved(todo, description, error) {
  const reason = failureReason(error);
  if (!(await reloadToCheck())) {
    showFailure(
      `${reason} It is not known whether ${quote(description)} was saved, and the list could ` +
        'not be reloaded to check. Retry to see what is saved.',
      error,
    );
    return;
  }
  if (findTodo(todo.id)?.description === description) {
    if (editing?.id === todo.id && editing.input.value === description) stopEditing();
    render();
    showNotice('success', `${reason} The list has been reloaded: ${quote(description)} was saved.`);
  } else {
    showFailure(
      `${reason} It is not known whether ${quote(description)} was saved: the reloaded list does ` +
        'not show it yet, so your text is still in the editor.',
      error,
    );
  }
}

async function remove(id, button) {
  const todo = findTodo(id);
  if (!todo) return;
  await whileBusy(button, async () => {
    showNotice('busy', `Deleting ${quote(todo.description)}…`);
    try {
      await api('DELETE', `/api/todos/${encodeURIComponent(id)}`);
    } catch (error) {
      if (!error.outcomeUnknown) {
        showFailure(`${quote(todo.description)} was not deleted. ${failureReason(error)}`, error);
        return;
      }
      const reason = failureReason(error);
      const checked = await reloadToCheck();
      if (checked && findTodo(id) === undefined) {
        const gone = `The list has been reloaded: ${quote(todo.description)} is no longer in it.`;
        showNotice('success', `${reason} ${gone}`);
      } else {
        const why = checked
          ? 'the reloaded list still shows it.'
          : 'the list could not be reloaded.';
        showFailure(
          `${reason} It is not known whether ${quote(todo.description)} was deleted: ${why}`,
          error,
        );
      }
      return;
    }
    const index = state.todos.findIndex((candidate) => candidate.id === id);
    state.todos = state.todos.filter((candidate) => candidate.id !== id);
    render();
    // Focus goes to the item that took its place, or back to the list's heading.
    const next = state.todos[Math.min(index, state.todos.length - 1)];
    const target = next ? itemElement(next.id)?.querySelector('.edit') : $('todos-heading');
    target?.focus();
    showNotice('success', `Deleted ${quote(todo.description)}.`);
  });
}

function saveDraft() {
  const draft = {
    add: addInput.value,
    edit: editing ? { id: editing.id, text: editing.input.value } : undefined,
  };
  if (draft.add !== '' || draft.edit !== undefined) {
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  }
}

/**
 * What the user had typed when a call answered 401 on the page before this sign-in, read as the
 * page loads: a draft this page saves itself (a write refused while the list was still loading) is
 * for the next page, not for this one to consume.
 */
const draftFromBeforeSignIn = sessionStorage.getItem(DRAFT_KEY);

/** Puts back what the user had typed before signing in again, once the list is shown again. */
function restoreDraft() {
  const saved = draftFromBeforeSignIn;
  if (saved === null) return;
  if (sessionStorage.getItem(DRAFT_KEY) === saved) sessionStorage.removeItem(DRAFT_KEY);
  let draft;
  try {
    draft = JSON.parse(saved);
  } catch {
    return;
  }
  if (typeof draft.add === 'string' && draft.add !== '') addInput.value = draft.add;
  const edit = draft.edit;
  if (edit && findTodo(edit.id)) startEditing(edit.id, edit.text);
  else addInput.focus();
  showNotice('success', 'What you typed before signing in is back. Submit it again to save it.');
}

async function startTodoSection() {
  $('signed-in').hidden = false;
  watchLength(addInput);
  addForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void add();
  });
  $('retry').addEventListener('click', () => void retryLoading());
  try {
    await loadTodos();
  } catch (error) {
    showFailure(`Your to-dos could not be loaded. ${failureReason(error)}`, error);
    return;
  }
  restoreDraft();
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

function showSignedOut(loginUrl) {
  $('sign-in').href = loginUrl ?? DEFAULT_LOGIN_URL;
  $('signed-out').hidden = false;
}

async function showSignedIn(me) {
  $('user-name').textContent = me.name || me.username;
  const signOut = $('sign-out-form');
  signOut.action = me.signOut.url;
  $('sign-out-csrf').value = me.signOut.csrfToken;
  $('account').hidden = false;
  await startTodoSection();
  // The notes and the sessions come after the to-dos, so they never hold them up. The notes
  // section shows only when the app is configured with an API named `notes`.
  if (Array.isArray(me.apis) && me.apis.includes('notes')) {
    void showNotes({
      api,
      whileBusy,
      showNotice,
      showFailure,
      failureReason,
      quote,
      setFieldProblem,
    });
  }
  void showSessions({
    api,
    whileBusy,
    announce: (message) => showNotice('success', message),
    showFailure: (message, error) => showFailure(`${message} ${failureReason(error)}`, error),
    csrfToken: me.signOut.csrfToken,
  });
}

// ---------------------------------------------------------------------------------------------
// Start-up

async function start() {
  let response;
  try {
    response = await fetch('/auth/me', {
      headers: { 'X-CSRF': '1', Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch {
    showNotice('error', 'The app could not be reached. Reload the page to try again.');
    return;
  } finally {
    $('loading').hidden = true;
  }
  const body = await response.json().catch(() => undefined);
  if (response.status === 401) showSignedOut(body?.loginUrl);
  else if (response.ok) await showSignedIn(body);
  else showNotice('error', describeProblem(response, body));
}

void start();
