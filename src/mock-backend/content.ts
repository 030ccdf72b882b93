// The deterministic text, token counts and vectors the mock answers with.
import { createHash } from 'node:crypto';

/** The multi-byte text used by x-mock-split-utf8: a 2-byte and a 4-byte UTF-8 sequence. */
export const SPLIT_TEXT = 'é😀';
/** The 4-byte sequence of 😀, where the split write cuts. */
export const SPLIT_BYTES = Buffer.from('😀', 'utf8');

/** `[name] tok1`, ` tok2`, … one string per content token; with a `digest`, `[name] #digest tok1`. */
export function tokenPieces(name: string, n: number, splitUtf8: boolean, chunkBytes: number, digest?: string): string[] {
  const pieces = new Array<string>(n);
  for (let i = 0; i < n; i++) pieces[i] = i === 0 ? `[${name}] ${digest ? `#${digest} ` : ''}tok1` : ` tok${i + 1}`;
  if (splitUtf8 && n > 0) pieces[n - 1] += ` ${SPLIT_TEXT}`;
  if (chunkBytes > 0) {
    // one padding string per request, not per token
    const pad = ' ' + 'x'.repeat(Math.max(0, chunkBytes - 16));
    for (let i = 0; i < n; i++) pieces[i] += pad;
  }
  return pieces;
}

/** What x-mock-digest puts in an answer: 16 hex digits of the SHA-256 of the request body as
 * received, so a test can tell that an answer is for exactly the body it sent. */
export function bodyDigest(body: string): string {
  return createHash('sha256').update(body, 'utf8').digest('hex').slice(0, 16);
}

/** Whitespace-separated words in every string under `v` (role/type tags skipped), at least 1. */
export function countWords(...values: unknown[]): number {
  let n = 0;
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      const m = v.match(/\S+/g);
      if (m) n += m.length;
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) if (k !== 'role' && k !== 'type') walk(x);
    }
  };
  for (const v of values) walk(v);
  return Math.max(1, n);
}

/** 8 floats in [-1, 1) derived from an FNV-1a hash of the text: same input, same vector. */
export function embeddingOf(text: string): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  const out = new Array<number>(8);
  for (let i = 0; i < 8; i++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    out[i] = Math.round((h / 0x80000000 - 1) * 1e6) / 1e6;
  }
  return out;
}
