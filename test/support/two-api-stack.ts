import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { startAppProcess, type AppProcess } from '../../dev/app-process.mts';
import { startAzurite, type Azurite } from '../../dev/azurite.mts';
import {
  appSettings,
  DEV_IDENTITIES,
  notesApiRegistration,
  webAppClient,
} from '../../dev/dev-settings.mts';
import {
  startEntraEmulator,
  type EntraEmulator,
  type TestUser,
} from '../../dev/entra-emulator/emulator.mts';
import { startNotesApi, type NotesApi } from '../../dev/notes-api/notes-api.mts';
import { findFreePort } from '../../dev/ports.mts';
import { startTodoListApi, type TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { testStack } from './stack.ts';

/** A stack of one test file's own with two APIs, so their request logs see no other file's calls. */
export interface TwoApiStack {
  readonly origin: string;
  readonly clientSecret: string;
  readonly emulator: EntraEmulator;
  /** The ToDoList API, served as `todos`. */
  readonly todos: TodoListApi;
  /** The notes API (its own audience and scopes in the emulator), served as `notes`. */
  readonly notes: NotesApi;
  readonly azurite: Azurite;
  readonly app: AppProcess;
  stop(): Promise<void>;
}

/**
 * The emulator, the ToDoList API, the notes API, Azurite and the built app on the local host,
 * wired as the global setup wires the shared stack, with `DOWNSTREAM_APIS=todos,notes`.
 */
export async function startTwoApiStack(options: {
  readonly users: readonly TestUser[];
  readonly env?: Readonly<Record<string, string>>;
}): Promise<TwoApiStack> {
  const appPort = await findFreePort();
  const origin = `http://localhost:${appPort}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const notesApi = notesApiRegistration();
  const { caCertPath } = testStack().emulator;
  const emulator = await startEntraEmulator({
    certDir: dirname(caCertPath),
    clients: [webAppClient(origin, clientSecret)],
    api: { clientId: DEV_IDENTITIES.apiClientId },
    otherApis: [notesApi],
    users: [...options.users],
  });
  const verifier = {
    issuer: emulator.issuer,
    jwksUri: emulator.jwksUri,
    audience: DEV_IDENTITIES.apiClientId,
    caCertPem: emulator.caCertPem,
  };
  const todos = await startTodoListApi(verifier);
  const notes = await startNotesApi({ ...verifier, audience: notesApi.clientId });
  const azurite = await startAzurite();
  const app = await startAppProcess({
    port: appPort,
    env: {
      ...appSettings({
        appOrigin: origin,
        authority: emulator.authority,
        clientSecret,
        todoListEndpoint: todos.endpoint,
        notesEndpoint: notes.endpoint,
        tokenCacheStorage: azurite.connectionString,
        sessionKeys: randomBytes(32).toString('base64'),
        tokenCacheKeys: randomBytes(32).toString('base64'),
      }),
      NODE_EXTRA_CA_CERTS: caCertPath,
      ...options.env,
    },
  });
  return {
    origin,
    clientSecret,
    emulator,
    todos,
    notes,
    azurite,
    app,
    async stop() {
      await app.stop();
      await azurite.stop();
      await notes.close();
      await todos.close();
      await emulator.close();
    },
  };
}
