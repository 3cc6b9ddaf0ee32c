import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const FORMAT = 1;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + IV_BYTES;

/** A sealed value did not open: wrong or retired key, tampering, or bound to other associated data. */
export class UnreadableSealError extends Error {
  constructor(reason: string) {
    super(`sealed value cannot be opened: ${reason}`);
    this.name = 'UnreadableSealError';
  }
}

interface RingKey {
  readonly id: Buffer;
  readonly key: Buffer;
}

/**
 * AES-256-GCM with a ring of keys: the first seals, every key opens, so keys rotate without losing
 * what the old key sealed. The associated data binds a sealed value to where it is stored (a row's
 * partition, a cookie's name), so a copy moved elsewhere does not open.
 *
 * Layout: format (1 byte) | key id (4) | IV (12) | ciphertext | tag (16).
 */
export class KeyRing {
  private readonly keys: readonly RingKey[];

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error('a key ring needs at least one key');
    this.keys = keys.map((key) => {
      if (key.length !== 32) throw new Error('AES-256-GCM keys are 32 bytes');
      // A digest, not the key: names the key without revealing it.
      return { id: createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES), key };
    });
  }

  seal(plaintext: Buffer, associatedData: string): Buffer {
    const { id, key } = this.keys[0] as RingKey;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(FORMAT), id, iv, ciphertext, cipher.getAuthTag()]);
  }

  open(sealed: Buffer, associatedData: string): Buffer {
    if (sealed.length < HEADER_BYTES + TAG_BYTES || sealed[0] !== FORMAT) {
      throw new UnreadableSealError('not a sealed value of a known format');
    }
    const id = sealed.subarray(1, 1 + KEY_ID_BYTES);
    const ringKey = this.keys.find((candidate) => candidate.id.equals(id));
    if (ringKey === undefined)
      throw new UnreadableSealError('sealed with a key that is not configured');
    const iv = sealed.subarray(1 + KEY_ID_BYTES, HEADER_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', ringKey.key, iv);
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(sealed.subarray(HEADER_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new UnreadableSealError('authentication failed');
    }
  }
}
