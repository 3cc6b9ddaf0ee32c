// `.funcignore` as the prepackage hook reads it: gitignore syntax without negation. Plain Node.js
// (18+), no dependency: azd runs hooks with the machine's own `node`.

import { readFileSync } from 'node:fs';
import path from 'node:path';

/** A `.funcignore` line as a test on a relative posix path, or undefined for a blank or comment. */
function toMatcher(line) {
  let pattern = line.trim();
  if (pattern === '' || pattern.startsWith('#')) return undefined;
  if (pattern.startsWith('!')) {
    throw new Error(`.funcignore: negated patterns are not supported here: ${pattern}`);
  }
  const directoryOnly = pattern.endsWith('/');
  pattern = pattern.replace(/\/+$/, '');
  // As in gitignore: a pattern with an inner slash is anchored at the root, any other matches a
  // name at any depth.
  const anchored = pattern.includes('/');
  const escape = (text) => text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  const body = pattern
    .replace(/^\//, '')
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((piece) => piece.split('?').map(escape).join('[^/]'))
        .join('[^/]*'),
    )
    .join('.*');
  const regex = new RegExp(anchored ? `^${body}$` : `(^|/)${body}$`);
  return (relative, isDirectory) => (!directoryOnly || isDirectory) && regex.test(relative);
}

/**
 * Reads `<root>/.funcignore` and answers whether a path relative to root (posix separators) is
 * ignored.
 *
 * @param {string} root
 * @returns {(relative: string, isDirectory: boolean) => boolean}
 */
export function readFuncignore(root) {
  const matchers = readFileSync(path.join(root, '.funcignore'), 'utf8')
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .map(toMatcher)
    .filter((matcher) => matcher !== undefined);
  return (relative, isDirectory) => matchers.some((matches) => matches(relative, isDirectory));
}
