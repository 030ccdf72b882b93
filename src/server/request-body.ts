// Reads a client's JSON body under a size cap and pulls out the two fields routing needs.
// The raw text is kept as received so it can be forwarded byte for byte.
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { RelayError } from '../core/index.js';

export interface ParsedBody {
  raw: string;
  model: string;
  stream: boolean;
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        reject(tooLarge(maxBytes));
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
    req.on('error', reject);
  });
}

export function parseBody(buf: Buffer): ParsedBody {
  if (!isUtf8(buf)) throw new RelayError('invalid_request', 'The request body is not valid UTF-8.');
  const raw = buf.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(raw);
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
  return { raw, model, stream: stream === true };
}

function tooLarge(maxBytes: number): RelayError {
  return new RelayError('body_too_large', `The request body exceeds the limit of ${maxBytes} bytes.`);
}
