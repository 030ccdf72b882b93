// The only place frames are parsed: text → validated message, or a typed failure with its close code.
import { CloseCode, ServerMessage, WorkerMessage, type MessageOf } from './messages.js';
import type { z } from 'zod';

export type Decoded<T> = { ok: true; msg: T } | { ok: false; closeCode: number; reason: string };

function decode<S extends z.ZodTypeAny>(schema: S, data: string): Decoded<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { ok: false, closeCode: CloseCode.protocolError, reason: 'frame is not valid JSON' };
  }
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
  // Hot path: streams are mostly response_chunk frames, and every request ends in a
  // response_complete. Checking their fields by hand is the same validation the schema does, at a
  // fraction of the cost; anything that doesn't pass takes the schema (and its error message).
  if (data.startsWith('{"type":"response_')) {
    const raw = parse(data);
    if (raw === undefined) return notJson();
    const fast = fastWorkerMessage(raw);
    if (fast) return { ok: true, msg: fast };
  }
  return decode(WorkerMessage, data);
}

export function decodeServerMessage(data: string): Decoded<ServerMessage> {
  if (data.startsWith('{"type":"request"')) {
    const raw = parse(data);
    if (raw === undefined) return notJson();
    const r = raw as Record<string, unknown>;
    if (
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
  }
  return decode(ServerMessage, data);
}

function fastWorkerMessage(raw: unknown): WorkerMessage | undefined {
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
    if (typeof tc !== 'object' || tc === null) return undefined;
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
const isCount = (x: unknown): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0;

function isStringRecord(x: unknown): boolean {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  for (const k in x) if (typeof (x as Record<string, unknown>)[k] !== 'string') return false;
  return true;
}


export function encode(msg: ServerMessage | WorkerMessage): string {
  return JSON.stringify(msg);
}
