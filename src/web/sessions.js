// "Your sessions": the signed-in user's sessions (this device and others), each of which can be
// ended, and "Sign out everywhere". Started from app.js's showSignedIn, which passes in what the
// page shares: the API call, busy marking and the page's one notice line.

const $ = (id) => document.getElementById(id);
const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function timeElement(iso) {
  const time = document.createElement('time');
  time.dateTime = iso;
  time.textContent = when.format(new Date(iso));
  return time;
}

/**
 * Shows the section and fills the list.
 * @param {{ api: Function, whileBusy: Function, announce: (message: string) => void,
 *   showFailure: (message: string, error: unknown) => void, csrfToken: string }} page
 */
export async function showSessions(page) {
  $('sign-out-everywhere-csrf').value = page.csrfToken;
  $('sessions').hidden = false;
  let sessions;
  try {
    ({ sessions } = await page.api('GET', '/auth/sessions'));
  } catch (error) {
    page.showFailure('Your sessions could not be loaded.', error);
    return;
  }
  // This device first, then the others, newest first.
  const ordered = [...sessions].sort(
    (a, b) => Number(b.current) - Number(a.current) || b.createdAt.localeCompare(a.createdAt),
  );
  $('session-list').replaceChildren(...ordered.map((session) => sessionView(page, session)));
}

function cell(...content) {
  const td = document.createElement('td');
  td.append(...content);
  return td;
}

function sessionView(page, session) {
  const row = document.createElement('tr');
  row.dataset.id = session.id;
  const name = document.createElement('strong');
  name.textContent = session.current ? 'This device' : 'Another device';
  const end = document.createElement('button');
  end.type = 'button';
  end.className = session.current ? 'danger' : 'secondary';
  // The accessible name says which session the button ends.
  end.setAttribute(
    'aria-label',
    session.current
      ? 'End this device'
      : `End the session signed in ${when.format(new Date(session.createdAt))}`,
  );
  end.textContent = session.current ? 'End (sign out here)' : 'End';
  end.addEventListener('click', () => void page.whileBusy(end, () => endSession(page, session)));
  row.append(
    cell(name),
    cell(timeElement(session.createdAt)),
    cell(timeElement(session.lastUsedAt)),
    cell(end),
  );
  return row;
}

async function endSession(page, session) {
  try {
    await page.api('DELETE', `/auth/sessions/${encodeURIComponent(session.id)}`);
  } catch (error) {
    page.showFailure('The session could not be ended.', error);
    return;
  }
  if (session.current) {
    // This browser's session is gone (its cookie cleared): show the signed-out page.
    window.location.assign('/');
    return;
  }
  const list = $('session-list');
  const rows = [...list.children];
  const index = rows.findIndex((row) => row.dataset.id === session.id);
  rows[index]?.remove();
  // Focus goes to the session that took its place, or back to the section's heading.
  const next = list.children[Math.min(index, list.children.length - 1)];
  (next?.querySelector('button') ?? $('sessions-heading')).focus();
  page.announce('The session was ended. That device is signed out.');
}
