// The admin token: `Authorization: Bearer <token>`, compared in constant time. Without one
// configured, every admin call is refused: the admin API is never open by default.
import { digest, sameSecret } from './secrets.js';

export type AdminVerdict = 'ok' | 'missing' | 'wrong' | 'disabled';

export class AdminToken {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  get configured(): boolean {
    return this.expected !== undefined;
  }

  check(authorization: string | undefined): AdminVerdict {
    if (!this.expected) return 'disabled';
    const given = bearer(authorization);
    if (given === undefined) return 'missing';
    return sameSecret(given, this.expected) ? 'ok' : 'wrong';
  }
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearer(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8) return undefined;
  if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const t = authorization.slice(7).trim();
  return t.length > 0 ? t : undefined;
}
