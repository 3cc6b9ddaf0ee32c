// Route templates as the Functions host matches them: its router is ASP.NET Core routing, so literal
// segments compare case-insensitively, `{name?}` may be missing, `{*name}` takes the rest of the path
// and `{name:int}` adds a constraint. Anything this file does not understand fails at start-up rather
// than matching differently from the real host.

export interface RouteTemplate {
  readonly template: string;
  /** Route values for a URL path (percent-encoded, as in `URL.pathname`), or undefined if it does not match. */
  match(pathname: string): Record<string, string> | undefined;
}

type Constraint = (value: string) => boolean;

type Segment =
  | { kind: 'literal'; text: string }
  | {
      kind: 'parameter';
      name: string;
      optional: boolean;
      catchAll: boolean;
      defaultValue: string | undefined;
      constraints: Constraint[];
    };

const integer = /^[+-]?\d+$/;
const isNumber: Constraint = (v) => v.trim() !== '' && Number.isFinite(Number(v));
const isInteger = (v: string, bits: 32n | 64n): boolean =>
  integer.test(v) && BigInt(v) >= -(2n ** (bits - 1n)) && BigInt(v) < 2n ** (bits - 1n);

// The inline constraints of ASP.NET Core routing that take no argument or one number (or a regex).
const constraints: Record<string, (arg: string | undefined) => Constraint> = {
  int: () => (v) => isInteger(v, 32n),
  long: () => (v) => isInteger(v, 64n),
  bool: () => (v) => /^(true|false)$/i.test(v),
  guid: () => (v) =>
    /^[({]?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[)}]?$|^[0-9a-f]{32}$/i.test(
      v,
    ),
  alpha: () => (v) => /^[a-z]+$/i.test(v),
  double: () => isNumber,
  float: () => isNumber,
  decimal: () => isNumber,
  min: (arg) => {
    const bound = intArg(arg);
    return (v) => isInteger(v, 64n) && BigInt(v) >= bound;
  },
  max: (arg) => {
    const bound = intArg(arg);
    return (v) => isInteger(v, 64n) && BigInt(v) <= bound;
  },
  minlength: (arg) => {
    const bound = Number(intArg(arg));
    return (v) => v.length >= bound;
  },
  maxlength: (arg) => {
    const bound = Number(intArg(arg));
    return (v) => v.length <= bound;
  },
  regex: (arg) => {
    const pattern = new RegExp(requireArg(arg), 'i');
    return (v) => pattern.test(v);
  },
};

function requireArg(arg: string | undefined): string {
  if (arg === undefined) throw new Error('a constraint lacks its argument');
  return arg;
}

function intArg(arg: string | undefined): bigint {
  const text = requireArg(arg).trim();
  if (!integer.test(text)) throw new Error(`"${text}" is not an integer`);
  return BigInt(text);
}

/** A template's segments: one leading and one trailing slash are not segments. */
function splitTemplate(template: string): string[] {
  const trimmed = template.replace(/^\//, '').replace(/\/$/, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

/**
 * The request path as Kestrel gives it to routing (`HttpRequest.Path`): percent-decoded except
 * `%2F`, so an encoded slash stays inside its segment; a sequence that is not valid UTF-8 stays as
 * it came.
 */
function decodePath(pathname: string): string {
  return pathname.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run.replace(/%2F/gi, '%252F'));
    } catch {
      return run;
    }
  });
}

interface PathToken {
  readonly text: string;
  /** Where the segment starts in the path: a catch-all takes the path from here on. */
  readonly offset: number;
}

/**
 * The path's segments as ASP.NET Core's PathTokenizer yields them (src/Http/Routing/src/
 * PathTokenizer.cs in dotnet/aspnetcore): after the leading `/`, split on `/`, and one trailing `/`
 * is no segment. `/a//b` has an empty middle segment; `/` and `` have none.
 */
function tokenize(path: string): PathToken[] {
  const tokens: PathToken[] = [];
  if (path.length <= 1) return tokens;
  let start = 1;
  while (start < path.length) {
    const slash = path.indexOf('/', start);
    const end = slash === -1 ? path.length : slash;
    tokens.push({ text: path.slice(start, end), offset: start });
    if (slash === -1) break;
    start = slash + 1;
  }
  return tokens;
}

function parseSegment(text: string): Segment {
  if (!/[{}]/.test(text)) return { kind: 'literal', text };
  const m = /^\{(\*{1,2})?([^{}/?*=:()]+)((?::\w+(?:\([^()]*\))?)*)(\?)?(?:=([^{}]*))?\}$/.exec(
    text,
  );
  if (!m) throw new Error(`segment "${text}" is not supported by the local host`);
  const [, star, name = '', constraintText = '', question, defaultValue] = m;
  return {
    kind: 'parameter',
    name,
    // A parameter with a default may be missing from the path, as an optional one.
    optional: question !== undefined || defaultValue !== undefined,
    catchAll: star !== undefined,
    defaultValue,
    constraints: [...constraintText.matchAll(/:(\w+)(?:\(([^()]*)\))?/g)].map(
      ([, kind = '', arg]) => {
        const factory = constraints[kind.toLowerCase()];
        if (!factory) throw new Error(`constraint "${kind}" is not supported by the local host`);
        return factory(arg);
      },
    ),
  };
}

export function parseRouteTemplate(template: string): RouteTemplate {
  let segments: Segment[];
  try {
    segments = splitTemplate(template).map(parseSegment);
    segments.forEach((segment, i) => {
      const rest = segments.slice(i + 1);
      if (segment.kind !== 'parameter') return;
      if (segment.catchAll && rest.length > 0)
        throw new Error('a catch-all must be the last segment');
      if (segment.optional && rest.some((s) => s.kind !== 'parameter' || !s.optional)) {
        throw new Error('only optional parameters may follow an optional parameter');
      }
    });
  } catch (err) {
    throw new Error(`Route template "${template}": ${(err as Error).message}`, { cause: err });
  }
  return { template, match: (pathname) => matchSegments(segments, pathname) };
}

/**
 * RoutePatternMatcher.TryMatch (src/Http/Routing/src/Patterns/RoutePatternMatcher.cs in
 * dotnet/aspnetcore), which the host's routes use through WebJobsRouteBuilder's `Route`:
 * - an empty segment never matches, wherever it is (`/items//x`, `/pages//`), except inside the
 *   rest a catch-all takes;
 * - a catch-all takes the raw rest of the path from its segment on, empty segments and a trailing
 *   slash included (`files/abc/` gives `abc/`), and no value when nothing is left;
 * - more segments than the template has never match; missing ones must be optional, have a
 *   default, or be the catch-all.
 */
function matchSegments(segments: Segment[], pathname: string): Record<string, string> | undefined {
  const path = decodePath(pathname);
  const tokens = tokenize(path);
  const values: Record<string, string> = {};
  let i = 0;
  for (; i < tokens.length; i++) {
    const { text, offset } = tokens[i] as PathToken;
    const segment = segments[i];
    if (text === '' || segment === undefined) return undefined;
    if (segment.kind === 'literal') {
      if (text.toLowerCase() !== segment.text.toLowerCase()) return undefined;
      continue;
    }
    const value = segment.catchAll ? path.slice(offset) : text;
    if (!segment.constraints.every((accepts) => accepts(value))) return undefined;
    values[segment.name] = value;
    if (segment.catchAll) return values;
  }
  for (const segment of segments.slice(i)) {
    if (segment.kind === 'literal') return undefined;
    if (!segment.optional && !segment.catchAll) return undefined;
    if (segment.defaultValue !== undefined) values[segment.name] = segment.defaultValue;
  }
  return values;
}
