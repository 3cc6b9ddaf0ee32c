import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { HttpHandler, HttpRequest, HttpResponseInit } from '@azure/functions';
import { problemResponse, SECURITY_HEADERS } from '../http/problem-response';

/**
 * The page's files: `src/web/` in the app's root, the nearest folder above this module holding
 * `host.json`. The module runs at different depths (`src/lib/web/` in the tests, `dist/lib/web/` from
 * tsc, `dist/bundle/` for `func start`, the local host and a deployed package), and all find the same
 * folder without a copy step.
 */
const WEB_ROOT = path.join(appRootAbove(__dirname), 'src', 'web');

function appRootAbove(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'host.json'))) return dir;
    if (path.dirname(dir) === dir) {
      throw new Error(
        `no host.json in ${start} or above it: the app must run from its Functions app root`,
      );
    }
  }
}

const PAGE = 'index.html';
/** Served under `/static/<name>`; nothing else in the folder is reachable. */
const STATIC_FILES: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'sessions.js': 'text/javascript; charset=utf-8',
  'notes.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** The methods the page answers. */
const PAGE_METHODS: readonly string[] = ['GET', 'HEAD'];

interface WebFile {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

/**
 * Only this origin's script, style and API, and form posts to this app and to the IdP: Chrome
 * checks `form-action` on the redirect that follows a form post, and sign-out's 303 goes to the
 * IdP's end-session endpoint on the authority's host.
 */
function pageContentSecurityPolicy(authority: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    `form-action 'self' ${new URL(authority).origin}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

function load(root: string, name: string, contentType: string): WebFile {
  const body = readFileSync(path.join(root, name));
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, contentType, etag };
}

/**
 * The web page and its static files, read once at start-up (a missing file stops the app there,
 * not at the first visit). Revalidated on every use (`no-cache` + ETag) since the names carry no
 * version: a deployment takes effect at once and an unchanged file costs a 304.
 */
export class WebSite {
  private readonly page: WebFile;
  private readonly staticFiles: ReadonlyMap<string, WebFile>;
  private readonly headers: Readonly<Record<string, string>>;

  constructor(authority: string, root = WEB_ROOT) {
    this.page = load(root, PAGE, 'text/html; charset=utf-8');
    this.staticFiles = new Map(
      Object.entries(STATIC_FILES).map(([name, type]) => [name, load(root, name, type)]),
    );
    this.headers = {
      ...SECURITY_HEADERS,
      'Content-Security-Policy': pageContentSecurityPolicy(authority),
      // Not `no-referrer`: under it a browser sends `Origin: null` with a form post (Fetch
      // standard), and the sign-out form's origin check would refuse it. `same-origin` keeps the
      // Origin for this app and still sends other sites no referrer.
      'Referrer-Policy': 'same-origin',
      'Cache-Control': 'no-cache',
    };
  }

  /**
   * `/` is registered for every method (see src/functions/web-page.ts) so that the host's own home
   * page never answers there; this answers all but GET and HEAD with 405.
   */
  readonly pageHandler: HttpHandler = (request) =>
    Promise.resolve(
      PAGE_METHODS.includes(request.method)
        ? this.serve(request, this.page)
        : problemResponse({
            status: 405,
            title: 'Method not allowed',
            detail: `Use ${PAGE_METHODS.join(' or ')} on this page.`,
            headers: { Allow: PAGE_METHODS.join(', ') },
          }),
    );

  readonly staticFileHandler: HttpHandler = (request) => {
    const file = this.staticFiles.get(request.params.name ?? '');
    if (file === undefined) {
      return Promise.resolve(
        problemResponse({ status: 404, title: 'Not found', detail: 'There is no such file.' }),
      );
    }
    return Promise.resolve(this.serve(request, file));
  };

  private serve(request: HttpRequest, file: WebFile): HttpResponseInit {
    const headers = { ...this.headers, ETag: file.etag };
    if (request.headers.get('if-none-match') === file.etag) return { status: 304, headers };
    return {
      status: 200,
      headers: { ...headers, 'Content-Type': file.contentType },
      body: file.body,
    };
  }
}
