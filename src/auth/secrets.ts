// Making and checking secrets: 192 random bits behind a recognisable prefix, kept only as SHA-256,
// compared in constant time. Keys are long and random, so a fast hash is as good as a slow one.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

export interface NewSecret {
  id: string;
  /** Shown once, to the operator who asked for it. */
  secret: string;
  /** Enough of the secret to tell keys apart in a list. */
  prefix: string;
  hash: string;
}

export function newSecret(kind: 'mr' | 'mrw'): NewSecret {
  const secret = `${kind}-${randomBytes(24).toString('base64url')}`;
  return { id: `${kind === 'mr' ? 'key' : 'wtok'}_${randomUUID().replaceAll('-', '').slice(0, 16)}`, secret, prefix: secret.slice(0, kind.length + 7), hash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
export function sameSecret(given: string, expectedHash: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), expectedHash);
}

export function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
