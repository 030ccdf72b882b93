// Reads a client's JSON body under a size cap and pulls out the two fields routing needs.
// The raw text is kept as received so it can be forwarded byte for byte.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError } from '../core/index.js';
import type { BodyBudget } from './body-budget.js';
import { MAX_MODEL_NAME } from './config.js';

export interface ParsedBody {
  raw: Buffer;
  model: string;
  stream: boolean;
  /** The parsed object, read (never re-serialised) for routing hints. */
  json: Record<string, unknown>;
}

export interface BodyLimits {
  maxBytes: number;
  /** The body must have arrived within this long (0 = no deadline). */
  timeoutMs: number;
  budget: BodyBudget;
}

/** Collects the body under the caps; calls `done` once, with the bytes or an error. The bytes stay
 * charged to the budget until `res` closes (a queued or running request keeps its body for a retry).
 * Callbacks, not a promise: this runs for every request, and the microtask hops showed in profiles. */
export function readBody(req: IncomingMessage, res: ServerResponse, limits: BodyLimits, done: (err: Error | undefined, body: Buffer) => void): void {
  const { maxBytes, budget } = limits;
  const declared = Number(req.headers['content-length']);
  const known = Number.isFinite(declared) && declared >= 0;
  if (known && declared > maxBytes) return done(tooLarge(maxBytes), EMPTY);
  let charged = 0;
  // A declared length is charged before a byte is read: a client can't hold memory it was refused.
  if (known && declared > 0) {
    if (!budget.take(declared)) return done(busy(), EMPTY);
    charged = declared;
  }
  res.once('close', () => budget.give(charged));
  let first: Buffer | undefined;
  let parts: Buffer[] | undefined;
  let size = 0;
  let finished = false;
  const timer = limits.timeoutMs > 0 ? setTimeout(() => finish(bodyTimeout(limits.timeoutMs), EMPTY), limits.timeoutMs) : undefined;
  const finish = (err: Error | undefined, body: Buffer): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (err) req.removeAllListeners('data');
    done(err, body);
  };
  req.on('data', (chunk: Buffer) => {
    if (finished) return;
    size += chunk.length;
    if (size > maxBytes) return finish(tooLarge(maxBytes), EMPTY);
    if (!known) {
      if (!budget.take(chunk.length)) return finish(busy(), EMPTY);
      charged += chunk.length;
    }
    if (first === undefined) first = chunk;
    else (parts ??= [first]).push(chunk);
  });
  req.on('end', () => finish(undefined, parts ? Buffer.concat(parts, size) : (first ?? EMPTY)));
  req.on('error', (err) => finish(err, EMPTY));
}

const EMPTY = Buffer.alloc(0);

export function parseBody(buf: Buffer): ParsedBody {
  if (!isUtf8(buf)) throw new RelayError('invalid_request', 'The request body is not valid UTF-8.');
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new RelayError('invalid_request', `The request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RelayError('invalid_request', 'The request body must be a JSON object.');
  }
  const { model, stream } = value as { model?: unknown; stream?: unknown };
  if (typeof model !== 'string' || model.length === 0) {
    throw new RelayError('invalid_request', "The request body needs a 'model' string.");
  }
  if (model.length > MAX_MODEL_NAME) {
    throw new RelayError('invalid_request', `'model' is ${model.length} characters long; the limit is ${MAX_MODEL_NAME}.`);
  }
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw new RelayError('invalid_request', "'stream' must be a boolean.");
  }
  return { raw: buf, model, stream: stream === true, json: value as Record<string, unknown> };
}

function busy(): RelayError {
  return new RelayError('server_busy', 'The relay is holding too many request bodies right now; retry shortly.');
}

function bodyTimeout(ms: number): RelayError {
  return new RelayError('body_timeout', `The request body did not arrive within ${ms / 1000}s.`);
}

function tooLarge(maxBytes: number): RelayError {
  return new RelayError('body_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`);
}
