import type { DownstreamApi } from '../config';

/** The methods `/api/<name>` can forward; an API's resources may take fewer. */
const API_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type ApiMethod = (typeof API_METHODS)[number];

/** One kind of path an API has: a pattern per segment after `/api/<name>` ([] is its root). */
interface ApiResource {
  readonly segments: readonly RegExp[];
  readonly methods: readonly ApiMethod[];
}

/**
 * What the proxy lets through to one API and back, as data: every API goes through the same code,
 * and an API whose contract is narrower than the general rules (DESIGN.md "Downstream APIs") says
 * so here.
 */
export interface ApiRules {
  /** How problem details name the API, e.g. `the API "notes"`. */
  readonly label: string;
  /**
   * The paths the API has, each with its methods, and the problem detail for any other path (400);
   * undefined: any path the general rules take, with any method.
   */
  readonly paths:
    { readonly resources: readonly ApiResource[]; readonly unknownDetail: string } | undefined;
  /** Whether the request's query goes on; when not, it is neither checked nor sent. */
  readonly forwardsQuery: boolean;
  /** The largest request body passed on (413 past it). */
  readonly maxBodyBytes: number;
  /** The largest answer taken from the API (502 past it): the host buffers answers whole. */
  readonly maxAnswerBytes: number;
  /**
   * JSON both ways: a body sent is declared JSON (415) and is UTF-8 JSON (400), and POST, PUT and
   * PATCH must send one; the API is asked for JSON, a success must be JSON or empty (else 502), and
   * an error that is not JSON becomes a problem with its status.
   */
  readonly jsonBodies: boolean;
}

const MiB = 1024 * 1024;

/** Ids are opaque to the proxy; this alphabet cannot form a dot segment, a slash or a scheme. */
const TODO_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * `todos`, the tutorial's ToDoList API (DESIGN.md "Routes"): a collection and its items with ids
 * `[A-Za-z0-9_-]{1,128}`, JSON bodies. It takes no query, so none is sent. Its bodies are small: a
 * to-do is at most 1,000 characters, so 16 KiB refuses a DoS payload long before the general 1 MiB,
 * and an answer near 1 MiB is not the API we know.
 */
const TODO_LIST_RULES: ApiRules = {
  label: 'the to-do list API',
  paths: {
    resources: [
      { segments: [], methods: ['GET', 'POST'] },
      { segments: [TODO_ID], methods: ['GET', 'PUT', 'PATCH', 'DELETE'] },
    ],
    unknownDetail: 'A to-do id is 1 to 128 letters, digits, "-" or "_".',
  },
  forwardsQuery: false,
  maxBodyBytes: 16 * 1024,
  maxAnswerBytes: MiB,
  jsonBodies: true,
};

/** The APIs whose contract is narrower than the general rules, by name. */
const CONTRACTS: ReadonlyMap<string, ApiRules> = new Map([['todos', TODO_LIST_RULES]]);

/** The general rules of DESIGN.md "Downstream APIs", for an API of this name. */
function generalRules(name: string): ApiRules {
  return {
    label: `the API "${name}"`,
    paths: undefined,
    forwardsQuery: true,
    maxBodyBytes: MiB,
    maxAnswerBytes: 10 * MiB,
    jsonBodies: false,
  };
}

/** A label at the start of a sentence: `the API "notes"` → `The API "notes"`. */
export function sentenceStart(label: string): string {
  return `${label.charAt(0).toUpperCase()}${label.slice(1)}`;
}

export function rulesOf(api: Pick<DownstreamApi, 'name'>): ApiRules {
  return CONTRACTS.get(api.name) ?? generalRules(api.name);
}

/**
 * The methods the path of these segments (as the host decoded them) takes, or why the API has no
 * such path.
 */
export function methodsAt(
  rules: ApiRules,
  segments: readonly string[],
):
  | { readonly ok: true; readonly methods: readonly ApiMethod[] }
  | { readonly ok: false; readonly detail: string } {
  if (rules.paths === undefined) return { ok: true, methods: API_METHODS };
  const resource = rules.paths.resources.find(
    (candidate) =>
      candidate.segments.length === segments.length &&
      candidate.segments.every((pattern, index) => pattern.test(segments[index] ?? '')),
  );
  return resource === undefined
    ? { ok: false, detail: rules.paths.unknownDetail }
    : { ok: true, methods: resource.methods };
}
