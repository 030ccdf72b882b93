// The only place frames are parsed: text → validated message, or a typed failure with its close code.
import { isUtf8 } from 'node:buffer';
import { CloseCode, ServerMessage, WorkerMessage, type MessageOf } from './messages.js';
import type { z } from 'zod';

export type Decoded<T> = { ok: true; msg: T } | { ok: false; closeCode: number; reason: string };

function validate<S extends z.ZodTypeAny>(schema: S, raw: unknown): Decoded<z.infer<S>> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const type = typeof raw === 'object' && raw !== null && 'type' in raw ? String((raw as { type: unknown }).type) : '?';
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    return { ok: false, closeCode: CloseCode.protocolError, reason: `invalid '${type}' message${where}: ${issue?.message ?? 'bad shape'}`.slice(0, 120) };
  }
  return { ok: true, msg: parsed.data };
}

export function decodeWorkerMessage(data: string): Decoded<WorkerMessage> {
  const raw = parse(data);
  return raw === undefined ? notJson() : validateWorkerMessage(raw);
}

export function decodeServerMessage(data: string): Decoded<ServerMessage> {
  const raw = parse(data);
  return raw === undefined ? notJson() : validateServerMessage(raw);
}

/** A binary frame (binary-frames extension) from a worker: see `encodeBinary`. */
export function decodeBinaryWorkerMessage(frame: Buffer): Decoded<WorkerMessage> {
  const raw = unpackBinary(frame);
  return raw === undefined ? badBinary() : validateWorkerMessage(raw);
}

/** A binary frame (binary-frames extension) from the server: see `encodeBinary`. */
export function decodeBinaryServerMessage(frame: Buffer): Decoded<ServerMessage> {
  const raw = unpackBinary(frame);
  return raw === undefined ? badBinary() : validateServerMessage(raw);
}

function validateWorkerMessage(raw: unknown): Decoded<WorkerMessage> {
  // Hot path: streams are mostly response_chunk frames, and every request ends in a
  // response_complete. Checking their fields by hand is the same validation the schema does, at a
  // fraction of the cost; anything that doesn't pass takes the schema (and its error message).
  const fast = fastWorkerMessage(raw);
  return fast ? { ok: true, msg: fast } : validate(WorkerMessage, raw);
}

function validateServerMessage(raw: unknown): Decoded<ServerMessage> {
  const r = raw as Record<string, unknown>;
  if (
    typeof raw === 'object' &&
    raw !== null &&
    r['type'] === 'request' &&
    isId(r['request_id']) &&
    typeof r['model'] === 'string' &&
    typeof r['endpoint_path'] === 'string' &&
    typeof r['is_streaming'] === 'boolean' &&
    typeof r['body'] === 'string' &&
    (r['headers'] === undefined || isStringRecord(r['headers']))
  ) {
    // The checked object itself is the message (unknown extra fields ride along, unread).
    r['headers'] ??= {};
    return { ok: true, msg: r as MessageOf<ServerMessage, 'request'> };
  }
  return validate(ServerMessage, raw);
}

function fastWorkerMessage(raw: unknown): WorkerMessage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (!isId(r['request_id'])) return undefined;
  // The checked object itself is the message (unknown extra fields ride along, unread).
  if (r['type'] === 'response_chunk') return typeof r['chunk'] === 'string' ? (r as MessageOf<WorkerMessage, 'response_chunk'>) : undefined;
  if (r['type'] !== 'response_complete') return undefined;
  const status = r['status_code'];
  const { headers, body, token_counts: tc } = r;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) return undefined;
  if (headers !== undefined && !isStringRecord(headers)) return undefined;
  if (body !== undefined && typeof body !== 'string') return undefined;
  if (tc !== undefined) {
    if (typeof tc !== 'object' || tc === null || Array.isArray(tc)) return undefined;
    const t = tc as Record<string, unknown>;
    for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) if (t[k] !== undefined && !isCount(t[k])) return undefined;
  }
  return r as MessageOf<WorkerMessage, 'response_complete'>;
}

function parse(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}

function notJson(): { ok: false; closeCode: number; reason: string } {
  return { ok: false, closeCode: CloseCode.protocolError, reason: 'frame is not valid JSON' };
}

const isId = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= 256;
// Safe integers, as zod's int() (a count past 2^53 is not one the schema takes).
const isCount = (x: unknown): boolean => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function isStringRecord(x: unknown): boolean {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  for (const k in x) if (typeof (x as Record<string, unknown>)[k] !== 'string') return false;
  return true;
}


export function encode(msg: ServerMessage | WorkerMessage): string {
  return JSON.stringify(msg);
}

// ---- binary-frames extension ----
// A message with a bulky text field (a request's or answer's body, a stream's chunk) may travel as a
// binary frame: [u32 BE length of the header][header: the message as JSON, minus that field][the
// field's raw UTF-8 bytes]. Bodies are JSON themselves, so as a JSON string every quote in them would
// be escaped by one side and unescaped by the other; as bytes they cross as they are.

type PayloadField = 'body' | 'chunk';
const PAYLOAD_FIELD = new Map<string, PayloadField>([
  ['request', 'body'],
  ['response_chunk', 'chunk'],
  ['response_complete', 'body'],
]);

/** The binary frame for `msg`, or undefined when it has no payload to carry (send it as text then).
 * `payload` supplies the field's bytes when the caller already holds them (the client's body), whole
 * or in pieces (a body with its `model` replaced: copied into the frame without being joined first). */
export function encodeBinary(msg: ServerMessage | WorkerMessage, payload?: Buffer | readonly Buffer[]): Buffer | undefined {
  const field = PAYLOAD_FIELD.get(msg.type);
  if (field === undefined) return undefined;
  const text = (msg as Record<string, unknown>)[field];
  if (payload === undefined && typeof text !== 'string') return undefined;
  const header = JSON.stringify({ ...msg, [field]: undefined });
  const h = Buffer.byteLength(header);
  const p = payload === undefined ? Buffer.byteLength(text as string) : Buffer.isBuffer(payload) ? payload.length : totalLength(payload);
  const frame = Buffer.allocUnsafe(4 + h + p);
  frame.writeUInt32BE(h, 0);
  frame.write(header, 4, h, 'utf8');
  if (payload === undefined) frame.write(text as string, 4 + h, p, 'utf8');
  else if (Buffer.isBuffer(payload)) payload.copy(frame, 4 + h);
  else {
    let at = 4 + h;
    for (const part of payload) at += part.copy(frame, at);
  }
  return frame;
}

function totalLength(parts: readonly Buffer[]): number {
  let n = 0;
  for (const part of parts) n += part.length;
  return n;
}

function unpackBinary(frame: Buffer): Record<string, unknown> | undefined {
  if (frame.length < 4) return undefined;
  const h = frame.readUInt32BE(0);
  if (h > frame.length - 4) return undefined;
  // Text must be text: decoding invalid UTF-8 would hand the client replacement characters in
  // place of what the backend said, with no error anywhere (a text frame's is checked by ws).
  if (!isUtf8(frame.subarray(4))) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(frame.toString('utf8', 4, 4 + h));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const field = typeof r['type'] === 'string' ? PAYLOAD_FIELD.get(r['type']) : undefined;
  if (field === undefined) return undefined;
  r[field] = frame.toString('utf8', 4 + h);
  return r;
}

function badBinary(): { ok: false; closeCode: number; reason: string } {
  return { ok: false, closeCode: CloseCode.protocolError, reason: 'malformed binary frame' };
}
