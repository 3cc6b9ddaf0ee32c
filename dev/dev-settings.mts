// The identities and app settings of the offline stack, shared by `npm run dev` and the tests so the
// two cannot drift apart.

import { emulatorDefaults } from './entra-emulator/emulator.mts';

/** The made-up registrations of the offline tenant (no real tenant uses them). */
export const DEV_IDENTITIES = {
  tenantId: emulatorDefaults.tenantId,
  webAppClientId: emulatorDefaults.client.clientId,
  apiClientId: emulatorDefaults.api.clientId,
} as const;

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
    TOKEN_CACHE_STORAGE: stack.tokenCacheStorage,
    TOKEN_CACHE_TABLE: stack.tokenCacheTable ?? 'tokencache',
    TOKEN_CACHE_KEYS: stack.tokenCacheKeys,
    SESSION_KEYS: stack.sessionKeys,
    // The Functions host's own setting, as infra/app.bicep sets it (see there).
    AzureWebJobsDisableHomepage: 'true',
  };
}
