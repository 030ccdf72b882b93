// How one generation request should behave: server defaults overridden by `x-mock-*` request headers.
// Node lower-cases header names, so the overrides are case-insensitive for free.

import type { IncomingHttpHeaders } from 'node:http';

export interface Plan {
  tokens: number;
  /** Before the first token (streaming) or before the whole answer (non-streaming, plus the inter-token gaps). */
  firstDelayMs: number;
  /** Between tokens. */
  delayMs: number;
  /** Fail with this status (400-599) and a JSON error body. */
  status: number | undefined;
  /** Put "é😀" in the content and cut one of its UTF-8 sequences across two socket writes. */
  splitUtf8: boolean;
  /** Pad every token to about this many bytes (0 = off). */
  chunkBytes: number;
  /** Never answer; wait for the client to leave. */
  hang: boolean;
  /** Destroy the socket without answering. */
  reset: boolean;
  /** Destroy the socket without answering the first request carrying this key; answer later ones. */
  resetOnce: string | undefined;
  /** Destroy the socket after this many tokens were written (streaming). */
  resetAfter: number | undefined;
  /** Put a digest of the request body in the first token (see `bodyDigest`). */
  digest: boolean;
}

export interface PlanDefaults {
  /** This backend's name: `x-mock-fault-on` may limit the faults to one backend by it. */
  name: string;
  tokens: number;
  tokenDelayMs: number;
  failStatus: number | undefined;
}

/** A non-negative integer header, or undefined when absent or malformed. */
function num(h: IncomingHttpHeaders, name: string): number | undefined {
  const v = h[name];
  if (typeof v !== 'string' || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

function flag(h: IncomingHttpHeaders, name: string): boolean {
  const v = h[name];
  return v === '1' || v === 'true';
}

const FAULTS = new Set(['x-mock-status', 'x-mock-hang', 'x-mock-reset', 'x-mock-reset-once', 'x-mock-reset-after']);

export function planFor(h: IncomingHttpHeaders, d: PlanDefaults): Plan {
  const delayMs = num(h, 'x-mock-delay-ms') ?? d.tokenDelayMs;
  // x-mock-fault-on: NAME: the fault headers are for that backend only; the others answer normally
  // (so a request retried on another backend can succeed there).
  const on = h['x-mock-fault-on'];
  if (typeof on === 'string' && on !== d.name) h = Object.fromEntries(Object.entries(h).filter(([k]) => !FAULTS.has(k)));
  const status = num(h, 'x-mock-status') ?? d.failStatus;
  return {
    tokens: num(h, 'x-mock-tokens') ?? d.tokens,
    firstDelayMs: num(h, 'x-mock-first-delay-ms') ?? delayMs,
    delayMs,
    status: status !== undefined && status >= 400 && status <= 599 ? status : undefined,
    splitUtf8: flag(h, 'x-mock-split-utf8'),
    chunkBytes: num(h, 'x-mock-chunk-bytes') ?? 0,
    hang: flag(h, 'x-mock-hang'),
    reset: flag(h, 'x-mock-reset'),
    resetAfter: num(h, 'x-mock-reset-after'),
    resetOnce: typeof h['x-mock-reset-once'] === 'string' ? h['x-mock-reset-once'] : undefined,
    digest: flag(h, 'x-mock-digest'),
  };
}
