import type { AccessToken, TokenCredential } from '@azure/identity';
import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import type { TableStorageConnection } from '../config';
import { withEndpoint } from '../http/dependency-errors';
import { TokenStoreUnavailableError } from '../errors';

// A request to the token store sits on the path of every page and API call: fail over to a 503 in
// about a second instead of the SDK's default of retrying for most of a minute.
const CLIENT_OPTIONS: TableServiceClientOptions = {
  retryOptions: { maxRetries: 2, retryDelayInMs: 100, maxRetryDelayInMs: 500 },
};

/**
 * Defers loading @azure/identity until a token is first needed: it is large, and only deployments
 * with an identity-based connection use it.
 */
class LazyManagedIdentityCredential implements TokenCredential {
  private credential: Promise<TokenCredential> | undefined;
  private readonly clientId: string | undefined;

  constructor(clientId: string | undefined) {
    this.clientId = clientId;
  }

  async getToken(scopes: string | string[]): Promise<AccessToken | null> {
    this.credential ??= import('@azure/identity').then(
      ({ DefaultAzureCredential }) =>
        new DefaultAzureCredential(
          this.clientId === undefined ? {} : { managedIdentityClientId: this.clientId },
        ),
    );
    return (await this.credential).getToken(scopes);
  }
}

export function createTableClient(
  connection: TableStorageConnection,
  tableName: string,
): TableClient {
  if (connection.kind === 'identity') {
    return new TableClient(
      connection.tableServiceUri,
      tableName,
      new LazyManagedIdentityCredential(connection.clientId),
      {
        ...CLIENT_OPTIONS,
        allowInsecureConnection: connection.tableServiceUri.startsWith('http:'),
      },
    );
  }
  return TableClient.fromConnectionString(connection.connectionString, tableName, {
    ...CLIENT_OPTIONS,
    // Azurite on a port of its own is reached over http; UseDevelopmentStorage=true sets this itself.
    allowInsecureConnection: /TableEndpoint=http:\/\//i.test(connection.connectionString),
  });
}

/** The HTTP status of a failed Table Storage call; undefined when none came back (network). */
export function statusOf(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'statusCode' in error
    ? (error as { statusCode?: number }).statusCode
    : undefined;
}

/**
 * The token table: created on first use where it does not exist yet (infra creates it in Azure;
 * locally the app does), and probed for readiness.
 */
export class TokenTable {
  readonly client: TableClient;
  private created: Promise<void> | undefined;

  constructor(client: TableClient) {
    this.client = client;
  }

  /** The table service's host and port, for logs: no path, query or credential. */
  get endpoint(): string {
    return new URL(this.client.url).host;
  }

  /** Creates the table once per process; a failed attempt is forgotten so the next call tries again. */
  ensureExists(): Promise<void> {
    this.created ??= this.client.createTable().catch((error: unknown) => {
      this.created = undefined;
      throw withEndpoint(
        new TokenStoreUnavailableError('The token table could not be reached or created', {
          cause: error,
        }),
        this.endpoint,
      );
    });
    return this.created;
  }

  /**
   * Runs a table operation once the table exists. A table deleted behind the process's back (an
   * emulator restarted in memory, an operator) is created again and the operation retried once,
   * so service resumes without a restart.
   */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    await this.ensureExists();
    try {
      return await operation();
    } catch (error) {
      if (!isTableMissing(error)) throw error;
      this.created = undefined;
      await this.ensureExists();
      return operation();
    }
  }

  /**
   * Resolves when the table answers a query (a table not created yet answers too: the first write
   * creates it, so a health check writes nothing); throws `TokenStoreUnavailableError` otherwise.
   */
  async probe(): Promise<void> {
    try {
      await this.client
        .listEntities({ queryOptions: { select: ['PartitionKey'] } })
        .byPage({ maxPageSize: 1 })
        .next();
    } catch (error) {
      if (isTableMissing(error)) return;
      throw withEndpoint(
        new TokenStoreUnavailableError('The token table did not answer', { cause: error }),
        this.endpoint,
      );
    }
  }
}

function isTableMissing(error: unknown): boolean {
  const details = (error as { details?: { errorCode?: string } } | undefined)?.details;
  return statusOf(error) === 404 && details?.errorCode === 'TableNotFound';
}
