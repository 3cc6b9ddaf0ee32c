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

/** Splits a path into segments, ignoring one leading and one trailing slash as ASP.NET Core routing does. */
function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\//, '').replace(/\/$/, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

// Kestrel decodes the request path except `%2F`, so an encoded slash stays inside its segment.
function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/%2F/gi, '%252F'));
  } catch {
    return raw;
  }
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
    segments = splitPath(template).map(parseSegment);
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
  return { template, match: (pathname) => matchSegments(segments, splitPath(pathname)) };
}

function matchSegments(
  segments: Segment[],
  rawParts: string[],
): Record<string, string> | undefined {
  const parts = rawParts.map(decodeSegment);
  const last = segments.at(-1);
  const takesRest = last?.kind === 'parameter' && last.catchAll;
  if (parts.length > segments.length && !takesRest) return undefined;
  const values: Record<string, string> = {};
  for (const [i, segment] of segments.entries()) {
    if (segment.kind === 'literal') {
      if (parts[i]?.toLowerCase() !== segment.text.toLowerCase()) return undefined;
      continue;
    }
    const value = segment.catchAll ? parts.slice(i).join('/') : parts[i];
    if (value === undefined || value === '') {
      if (!segment.optional && !segment.catchAll) return undefined;
      if (segment.defaultValue !== undefined) values[segment.name] = segment.defaultValue;
      continue;
    }
    if (!segment.constraints.every((accepts) => accepts(value))) return undefined;
    values[segment.name] = value;
  }
  return values;
}
