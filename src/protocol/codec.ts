// The only place frames are parsed: text → validated message, or a typed failure with its close code.
import { CloseCode, ServerMessage, WorkerMessage } from './messages.js';
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
  // Hot path: a stream is mostly response_chunk frames. Checking their two fields by hand is the same
  // validation the schema does, at a fraction of the cost; anything else takes the schema.
  if (data.startsWith('{"type":"response_chunk"')) {
    let raw: { request_id?: unknown; chunk?: unknown };
    try {
      raw = JSON.parse(data) as typeof raw;
    } catch {
      return { ok: false, closeCode: CloseCode.protocolError, reason: 'frame is not valid JSON' };
    }
    const id = raw.request_id;
    if (typeof id === 'string' && id.length > 0 && id.length <= 256 && typeof raw.chunk === 'string') {
      return { ok: true, msg: { type: 'response_chunk', request_id: id, chunk: raw.chunk } };
    }
  }
  return decode(WorkerMessage, data);
}
export const decodeServerMessage = (data: string): Decoded<ServerMessage> => decode(ServerMessage, data);

export function encode(msg: ServerMessage | WorkerMessage): string {
  return JSON.stringify(msg);
}
