import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing, UnreadableSealError } from '../../src/lib/tokens/key-ring.ts';

const [oldKey, newKey, otherKey] = [randomBytes(32), randomBytes(32), randomBytes(32)];
const plaintext = Buffer.from('refresh token material');

describe('KeyRing', () => {
  it('opens what it sealed, bound to the associated data', () => {
    const ring = new KeyRing([newKey]);
    const sealed = ring.seal(plaintext, 'partition-a');
    expect(ring.open(sealed, 'partition-a')).toEqual(plaintext);
    expect(sealed.includes(plaintext)).toBe(false);
    expect(() => ring.open(sealed, 'partition-b')).toThrow(UnreadableSealError);
  });

  it('seals with the first key and opens with any key (rotation)', () => {
    const sealedWithOld = new KeyRing([oldKey]).seal(plaintext, 'p');
    const rotated = new KeyRing([newKey, oldKey]);
    expect(rotated.open(sealedWithOld, 'p')).toEqual(plaintext);
    expect(new KeyRing([newKey]).open(rotated.seal(plaintext, 'p'), 'p')).toEqual(plaintext);
    expect(() => new KeyRing([oldKey]).open(rotated.seal(plaintext, 'p'), 'p')).toThrow(
      /key that is not configured/,
    );
  });

  it('refuses tampered, truncated and foreign values', () => {
    const ring = new KeyRing([newKey]);
    const sealed = ring.seal(plaintext, 'p');
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 20] = (flipped[flipped.length - 20] ?? 0) ^ 1;
    expect(() => ring.open(flipped, 'p')).toThrow(/authentication failed/);
    expect(() => ring.open(sealed.subarray(0, 20), 'p')).toThrow(UnreadableSealError);
    expect(() => ring.open(new KeyRing([otherKey]).seal(plaintext, 'p'), 'p')).toThrow(
      UnreadableSealError,
    );
  });

  it('uses a fresh IV every time', () => {
    const ring = new KeyRing([newKey]);
    expect(ring.seal(plaintext, 'p').equals(ring.seal(plaintext, 'p'))).toBe(false);
  });
});
