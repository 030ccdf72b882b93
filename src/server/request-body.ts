// Reads a client's JSON body under a size cap and pulls out the two fields routing needs.
// The raw text is kept as received so it can be forwarded byte for byte.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { RelayError } from '../core/index.js';

export interface ParsedBody {
  raw: Buffer;
  model: string;
  stream: boolean;
}

/** Collects the body under the cap; calls `done` once, with the bytes or an error. Callbacks, not a
 * promise: this runs for every request, and the microtask hops showed in profiles. */
export function readBody(req: IncomingMessage, maxBytes: number, done: (err: Error | undefined, body: Buffer) => void): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return done(tooLarge(maxBytes), EMPTY);
  let first: Buffer | undefined;
  let parts: Buffer[] | undefined;
  let size = 0;
  let finished = false;
  const finish = (err: Error | undefined, body: Buffer): void => {
    if (finished) return;
    finished = true;
    done(err, body);
  };
  req.on('data', (chunk: Buffer) => {
    if (finished) return;
    size += chunk.length;
    if (size > maxBytes) {
      req.removeAllListeners('data');
      return finish(tooLarge(maxBytes), EMPTY);
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
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw new RelayError('invalid_request', "'stream' must be a boolean.");
  }
  return { raw: buf, model, stream: stream === true };
}

function tooLarge(maxBytes: number): RelayError {
  return new RelayError('body_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`);
}
