// The page's only script. It never sees a token: the session cookie is HttpOnly and every API call
// goes to this app's own /api routes, which attach the token on the server.

const DRAFT_KEY = 'todo-draft';
const DEFAULT_LOGIN_URL = '/auth/signin?returnTo=%2F';

const $ = (id) => document.getElementById(id);
const errorRegion = $('error');
const statusRegion = $('status');
const addForm = $('add-form');
const addInput = $('new-todo');
const list = $('todo-list');

/** @type {{ id: string, description: string }[]} */
let todos = [];
/** The item being edited ({ id, input }), so a 401 can keep what was typed into it. */
let editing;

class ApiError extends Error {
  /**
   * @param {string} message
   * @param {string | undefined} loginUrl set when signing in (again) would let the call succeed
   */
  constructor(message, loginUrl) {
    super(message);
    this.loginUrl = loginUrl;
  }
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
    throw new ApiError('The app could not be reached. Check your connection and try again.');
  }
  const text = await response.text();
  let data;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (response.ok) return data;
  const loginUrl = response.status === 401 ? (data?.loginUrl ?? DEFAULT_LOGIN_URL) : undefined;
  throw new ApiError(describeProblem(response, data), loginUrl);
}

function announce(message) {
  statusRegion.textContent = message;
}

function clearError() {
  errorRegion.replaceChildren();
}

/** Shows an error; a 401 also keeps what the user typed and offers to sign in again. */
function showError(error) {
  const message = error instanceof ApiError ? error.message : 'Something went wrong.';
  const text = document.createElement('p');
  text.textContent = message;
  errorRegion.replaceChildren(text);
  if (error instanceof ApiError && error.loginUrl !== undefined) {
    saveDraft();
    const link = document.createElement('a');
    link.href = error.loginUrl;
    link.className = 'button';
    link.textContent = error.loginUrl.includes('consent=') ? 'Allow changes' : 'Sign in again';
    errorRegion.append(link);
  }
  if (!(error instanceof ApiError)) console.error(error);
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
  if (edit && todos.some((todo) => todo.id === edit.id)) startEditing(edit.id, edit.text);
  else addInput.focus();
  announce('What you typed before signing in is back. Submit it again to save it.');
}

/** Runs a form's call with its buttons disabled, so a double click does not send it twice. */
async function busy(form, action) {
  const buttons = form.querySelectorAll('button');
  buttons.forEach((button) => (button.disabled = true));
  form.setAttribute('aria-busy', 'true');
  try {
    clearError();
    await action();
  } catch (error) {
    showError(error);
  } finally {
    buttons.forEach((button) => (button.disabled = false));
    form.removeAttribute('aria-busy');
  }
}

function cloneTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

function itemView(todo) {
  const item = cloneTemplate('todo-item');
  item.dataset.id = todo.id;
  item.querySelector('.description').textContent = todo.description;
  // Each button's accessible name says which to-do it acts on.
  item.querySelectorAll('.label').forEach((label) => {
    label.textContent = ` “${todo.description}”`;
  });
  item.querySelector('.edit').addEventListener('click', () => startEditing(todo.id));
  item
    .querySelector('.delete')
    .addEventListener('click', (event) => remove(todo, event.currentTarget));
  return item;
}

function render() {
  editing = undefined;
  list.replaceChildren(...todos.map(itemView));
  $('empty').hidden = todos.length > 0;
}

function itemElement(id) {
  return [...list.children].find((item) => item.dataset.id === id);
}

function startEditing(id, text) {
  const todo = todos.find((candidate) => candidate.id === id);
  const current = itemElement(id);
  if (!todo || !current) return;
  if (editing) stopEditing();
  const editor = cloneTemplate('todo-editor');
  editor.dataset.id = id;
  const form = editor.querySelector('form');
  const input = editor.querySelector('input');
  input.id = `edit-${id}`;
  editor.querySelector('label').htmlFor = input.id;
  input.value = text ?? todo.description;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(form, () => save(todo, input.value));
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
  const todo = todos.find((candidate) => candidate.id === id);
  const editor = id === undefined ? undefined : itemElement(id);
  editing = undefined;
  if (!todo || !editor) return;
  const item = itemView(todo);
  editor.replaceWith(item);
  if (restoreFocus) item.querySelector('.edit').focus();
}

async function loadTodos() {
  todos = (await api('GET', '/api/todos')) ?? [];
  render();
}

async function add(description) {
  const created = await api('POST', '/api/todos', { description });
  todos.push(created);
  render();
  addInput.value = '';
  addInput.focus();
  announce(`Added “${created.description}”.`);
}

async function save(todo, description) {
  const updated = await api('PATCH', `/api/todos/${encodeURIComponent(todo.id)}`, {
    description,
  });
  todos = todos.map((candidate) => (candidate.id === todo.id ? updated : candidate));
  render();
  itemElement(todo.id)?.querySelector('.edit').focus();
  announce(`Saved “${updated.description}”.`);
}

async function remove(todo, button) {
  button.disabled = true;
  clearError();
  try {
    await api('DELETE', `/api/todos/${encodeURIComponent(todo.id)}`);
  } catch (error) {
    button.disabled = false;
    showError(error);
    return;
  }
  const index = todos.findIndex((candidate) => candidate.id === todo.id);
  todos = todos.filter((candidate) => candidate.id !== todo.id);
  render();
  // Focus goes to the item that took its place, or back to the list's heading.
  const next = todos[Math.min(index, todos.length - 1)];
  const target = next ? itemElement(next.id)?.querySelector('.edit') : $('todos-heading');
  target?.focus();
  announce(`Deleted “${todo.description}”.`);
}

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
  $('signed-in').hidden = false;
  addForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(addForm, () => add(addInput.value));
  });
  try {
    await loadTodos();
  } catch (error) {
    showError(error);
    return;
  }
  restoreDraft();
}

async function start() {
  let response;
  try {
    response = await fetch('/auth/me', {
      headers: { 'X-CSRF': '1', Accept: 'application/json' },
      cache: 'no-store',
    });
  } catch {
    showError(new ApiError('The app could not be reached. Reload the page to try again.'));
    return;
  } finally {
    $('loading').hidden = true;
  }
  const body = await response.json().catch(() => undefined);
  if (response.status === 401) showSignedOut(body?.loginUrl);
  else if (response.ok) await showSignedIn(body);
  else showError(new ApiError(describeProblem(response, body)));
}

void start();
