// The identities and app settings of the offline stack, shared by `npm run dev` and the tests so the
// two cannot drift apart.

import { emulatorDefaults } from './entra-emulator/emulator.mts';

/** The made-up registrations of the offline tenant (no real tenant uses them). */
export const DEV_IDENTITIES = {
  tenantId: emulatorDefaults.tenantId,
  webAppClientId: emulatorDefaults.client.clientId,
  apiClientId: emulatorDefaults.api.clientId,
  /** The sample notes API's own registration: its tokens' audience is never the ToDoList API's. */
  notesApiClientId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
} as const;

/** The notes API's scopes, as it exposes them (dev/notes-api). */
export const NOTES_API_SCOPES = { read: 'Notes.Read', write: 'Notes.Write' } as const;

/** The notes API's registration in the emulator (its `otherApis`): its own audience and scopes. */
export function notesApiRegistration() {
  return {
    clientId: DEV_IDENTITIES.notesApiClientId,
    appIdUri: `api://${DEV_IDENTITIES.notesApiClientId}`,
    scopes: [NOTES_API_SCOPES.read, NOTES_API_SCOPES.write],
  };
}

/** The web app's registration in the emulator, for an app served at `appOrigin`. */
export function webAppClient(appOrigin: string, clientSecret: string) {
  return {
    clientId: DEV_IDENTITIES.webAppClientId,
    clientSecret,
    // POST_LOGOUT_REDIRECT_URI must be a registered redirect URI, as in Entra.
    redirectUris: [`${appOrigin}/auth/redirect`, `${appOrigin}/`],
  };
}

export interface StackEndpoints {
  readonly appOrigin: string;
  readonly authority: string;
  readonly clientSecret: string;
  readonly todoListEndpoint: string;
  /** The notes API's base URL: with it the app serves it as `/api/notes` besides `todos`. */
  readonly notesEndpoint?: string;
  readonly tokenCacheStorage: string;
  readonly sessionKeys: string;
  readonly tokenCacheKeys: string;
  readonly tokenCacheTable?: string;
}

/** The app settings (as in local.settings.json `Values`) that point the app at the offline stack. */
export function appSettings(stack: StackEndpoints): Record<string, string> {
  const apiScope = `api://${DEV_IDENTITIES.apiClientId}`;
  return {
    AUTHORITY: stack.authority,
    CLIENT_ID: DEV_IDENTITIES.webAppClientId,
    CLIENT_SECRET: stack.clientSecret,
    REDIRECT_URI: `${stack.appOrigin}/auth/redirect`,
    POST_LOGOUT_REDIRECT_URI: `${stack.appOrigin}/`,
    TODOLIST_ENDPOINT: stack.todoListEndpoint,
    TODOLIST_READ: `${apiScope}/ToDoList.Read`,
    TODOLIST_READWRITE: `${apiScope}/ToDoList.ReadWrite`,
    ...(stack.notesEndpoint === undefined ? {} : notesApiSettings(stack.notesEndpoint)),
    TOKEN_CACHE_STORAGE: stack.tokenCacheStorage,
    TOKEN_CACHE_TABLE: stack.tokenCacheTable ?? 'tokencache',
    TOKEN_CACHE_KEYS: stack.tokenCacheKeys,
    SESSION_KEYS: stack.sessionKeys,
    // The Functions host's own setting, as infra/app.bicep sets it (see there).
    AzureWebJobsDisableHomepage: 'true',
  };
}

/** The settings that add the notes API as `notes` (README "Settings", "Downstream APIs"). */
function notesApiSettings(endpoint: string): Record<string, string> {
  const { appIdUri } = notesApiRegistration();
  return {
    DOWNSTREAM_APIS: 'todos,notes',
    DOWNSTREAM_API_NOTES_URL: endpoint,
    DOWNSTREAM_API_NOTES_READ_SCOPES: `${appIdUri}/${NOTES_API_SCOPES.read}`,
    DOWNSTREAM_API_NOTES_WRITE_SCOPES: `${appIdUri}/${NOTES_API_SCOPES.write}`,
  };
}
