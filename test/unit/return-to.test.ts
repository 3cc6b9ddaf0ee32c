import { describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../src/lib/auth/return-to.ts';

describe('safeReturnTo', () => {
  it.each([
    ['/', '/'],
    ['/todos', '/todos'],
    ['/todos?filter=open&x=%20y', '/todos?filter=open&x=%20y'],
    ['/a/../b', '/b'],
  ])('keeps the same-origin path %s', (raw, expected) => {
    expect(safeReturnTo(raw)).toBe(expected);
  });

  it.each([
    '//evil.example',
    '//evil.example/path',
    'https://evil.example',
    'http:/evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/%2F%2Fevil.example',
    '/%5c%5cevil.example',
    'javascript:alert(1)',
    'evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/%00',
    '/.//evil.example',
    '/a/..//evil.example',
    '/%2e//evil.example',
    '',
    `/${'a'.repeat(3000)}`,
  ])('falls back to / for %j', (raw) => {
    expect(safeReturnTo(raw)).toBe('/');
  });

  it('falls back to / when there is no value', () => {
    expect(safeReturnTo(null)).toBe('/');
    expect(safeReturnTo(undefined)).toBe('/');
  });
});
