// Shared pieces of the faults-*.test.ts integration tests: HTTP clients that read SSE step by step,
// raw WebSocket worker peers, and a spying WebSocket proxy that sits between a real worker and the
// server and records every frame the server sends to it (request ids, cancel reasons).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { SECRET, type ServerProc } from '../helpers/cluster.js';

export const MODEL = 'mock-model';
export const PROTOCOL_VERSION = '2026-04-bridge-v1';

export function chatBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello there' }], ...extra });
}

export function messagesBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hello there' }], ...extra });
}

/** POST to the server; `headers` are the x-mock-* knobs (they reach the backend through the worker). */
export function post(server: ServerProc | string, path: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  const base = typeof server === 'string' ? server : server.url;
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal });
}

/** Non-streaming chat completion: status, parsed body and the assistant's text (if any). */
export async function chat(server: ServerProc | string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; headers: Headers; body: any; content: string | undefined }> {
  const res = await post(server, '/v1/chat/completions', chatBody(), headers, signal);
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body, content: body?.choices?.[0]?.message?.content };
}

/** A streaming response read piece by piece: `next()` waits for more text, `rest()` reads to the end. */
export class StreamReader {
  text = '';
  done = false;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  constructor(readonly res: Response) {
    assert.ok(res.body, 'response has a body');
    this.reader = res.body.getReader();
  }

  /** Reads until `pred(text)` holds (or the stream ends); returns whether it holds. */
  async until(pred: (text: string) => boolean): Promise<boolean> {
    while (!pred(this.text)) {
      if (this.done) return false;
      await this.read();
    }
    return true;
  }

  /** Reads to the end of the stream; rejects if the connection breaks. */
  async rest(): Promise<string> {
    while (!this.done) await this.read();
    return this.text;
  }

  private async read(): Promise<void> {
    const { value, done } = await this.reader.read();
    if (done) {
      this.done = true;
      this.text += this.decoder.decode();
      return;
    }
    this.text += this.decoder.decode(value, { stream: true });
  }
}

export async function openStream(server: ServerProc | string, path: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<StreamReader> {
  const res = await post(server, path, body, headers, signal);
  assert.equal(res.status, 200, `stream status (body: ${res.status === 200 ? '' : await res.clone().text()})`);
  return new StreamReader(res);
}

/** The `data:` payloads of an SSE text, in order. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.trim())
    .map((e) => e.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'));
}

/** The assistant text carried by an OpenAI chat SSE stream. */
export function chatStreamContent(text: string): string {
  let out = '';
  for (const d of sseData(text)) {
    if (d === '[DONE]') continue;
    const j = JSON.parse(d) as { choices?: { delta?: { content?: string } }[] };
    out += j.choices?.[0]?.delta?.content ?? '';
  }
  return out;
}

/** Asserts a complete, untouched OpenAI chat stream of `tokens` tokens from backend `name`. */
export function assertIntactChatStream(text: string, name: string, tokens: number): void {
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]', `stream ends with [DONE]: ${text.slice(-300)}`);
  assert.ok(!text.includes('"error"'), `no error event in the stream: ${text.slice(-300)}`);
  const expected = Array.from({ length: tokens }, (_, i) => (i === 0 ? `[${name}] tok1` : ` tok${i + 1}`)).join('');
  assert.equal(chatStreamContent(text), expected);
}

/** How many `[name] ` prefixes (one per backend answer) appear in a text. */
export function prefixes(text: string): string[] {
  return [...text.matchAll(/\[([A-Za-z0-9_-]+)\] tok1/g)].map((m) => m[1]!);
}

// ---------- raw protocol peers ----------

export interface RawPeer {
  ws: WebSocket;
  /** Parsed frames received from the server. */
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
  isOpen(): boolean;
  send(msg: unknown): void;
  /** Resolves with the first received frame (past or future) matching `pred`. */
  waitFrame(pred: (f: any) => boolean, what: string, timeoutMs?: number): Promise<any>;
}

/**
 * A frame as an object. Binary frames (binary-frames extension) are unpacked by this independent
 * reading of the documented layout, [u32 BE header length][header JSON][payload], with the payload
 * as text in `body` (request, response_complete) or `chunk` (response_chunk), and `binary: true`.
 */
export function parseFrame(data: RawData, isBinary: boolean): any {
  const buf = data as Buffer;
  if (!isBinary) return JSON.parse(buf.toString());
  const h = buf.readUInt32BE(0);
  const f = JSON.parse(buf.subarray(4, 4 + h).toString());
  f[f.type === 'response_chunk' ? 'chunk' : 'body'] = buf.subarray(4 + h).toString();
  f.binary = true;
  return f;
}

/** Packs a message as a binary frame, moving `field` into the payload. */
export function binaryFrame(msg: Record<string, unknown>, field: 'body' | 'chunk'): Buffer {
  const { [field]: payload, ...header } = msg;
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length);
  return Buffer.concat([len, h, Buffer.from(String(payload))]);
}

/** The worker endpoint of a server (a `ws://` URL given is taken as it is). */
export function wsUrl(server: ServerProc | string): string {
  if (typeof server === 'string' && /^wss?:/.test(server)) return server;
  const base = typeof server === 'string' ? server : server.url;
  return `${base.replace(/^http/, 'ws')}/v1/worker/connect`;
}

/** Opens an authenticated raw WebSocket to the worker endpoint (no register sent yet). */
export async function rawPeer(server: ServerProc | string, secret = SECRET): Promise<RawPeer> {
  const ws = new WebSocket(wsUrl(server), { headers: { 'x-worker-secret': secret }, perMessageDeflate: false });
  const frames: any[] = [];
  const waiters: { pred: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  const closed = once(ws, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  ws.on('error', () => {});
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const f = parseFrame(data, isBinary);
    frames.push(f);
    for (const w of waiters.splice(0)) {
      if (w.pred(f)) w.resolve(f);
      else waiters.push(w);
    }
  });
  await once(ws, 'open');
  return {
    ws,
    frames,
    closed,
    isOpen: () => ws.readyState === WebSocket.OPEN,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    waitFrame(pred, what, timeoutMs = 10_000) {
      const seen = frames.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`raw peer: timed out waiting for ${what}; got ${JSON.stringify(frames).slice(0, 500)}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (f) => {
            clearTimeout(t);
            resolve(f);
          },
        });
      });
    },
  };
}

/** A raw peer that registered and got its register_ack. */
export async function rawWorker(server: ServerProc | string, name: string, models: string[], extra: Record<string, unknown> = {}): Promise<RawPeer> {
  const peer = await rawPeer(server);
  peer.send({ type: 'register', worker_name: name, models, max_concurrent: 1, protocol_version: PROTOCOL_VERSION, ...extra });
  await peer.waitFrame((f) => f.type === 'register_ack', 'register_ack');
  return peer;
}

/** Outcome of a worker-endpoint upgrade attempt: 101 when it opened, else the HTTP status. */
/** A worker upgrade's answer: its status, Retry-After, and the error body's `code` on a refusal. */
export function upgradeStatus(server: ServerProc | string, secret: string, headers: Record<string, string> = {}): Promise<{ status: number; retryAfter?: string; code?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(server), { headers: { 'x-worker-secret': secret, ...headers } });
    ws.on('unexpected-response', (_req, res) => {
      const retryAfter = res.headers['retry-after'];
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        ws.terminate();
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
        } catch {
          // not JSON: no code
        }
        resolve({ status: res.statusCode ?? 0, ...(typeof retryAfter === 'string' ? { retryAfter } : {}), ...(code ? { code } : {}) });
      });
    });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

// ---------- the spying proxy ----------

/**
 * A WebSocket proxy for the worker link: a real worker connects to `url` as if it were the server;
 * every frame is passed through unchanged, and what the server sent is recorded in `fromServer`.
 */
export interface Spy {
  url: string;
  fromServer: any[];
  waitFrame(pred: (f: any) => boolean, what: string, timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

const sendableCode = (code: number): number => (code === 1000 || (code >= 3000 && code < 5000) || [1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011].includes(code) ? code : 1000);

export async function startSpy(server: ServerProc | string): Promise<Spy> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  const fromServer: any[] = [];
  const waiters: { pred: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  const target = wsUrl(server);
  wss.on('connection', (down, req) => {
    const query = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?')) : '';
    const secret = req.headers['x-worker-secret'];
    const up = new WebSocket(target + query, { headers: typeof secret === 'string' ? { 'x-worker-secret': secret } : {}, perMessageDeflate: false });
    const pending: [Buffer, boolean][] = [];
    up.on('error', () => {});
    down.on('error', () => {});
    up.on('open', () => {
      for (const [d, binary] of pending.splice(0)) up.send(d, { binary });
    });
    down.on('message', (d: RawData, binary: boolean) => {
      if (up.readyState === WebSocket.OPEN) up.send(d as Buffer, { binary });
      else pending.push([d as Buffer, binary]);
    });
    up.on('message', (d: RawData, binary: boolean) => {
      const f = parseFrame(d, binary);
      fromServer.push(f);
      for (const w of waiters.splice(0)) {
        if (w.pred(f)) w.resolve(f);
        else waiters.push(w);
      }
      if (down.readyState === WebSocket.OPEN) down.send(d as Buffer, { binary });
    });
    up.on('unexpected-response', (_r, res) => {
      res.resume();
      down.terminate();
    });
    up.on('close', (code, reason) => down.readyState === WebSocket.OPEN && down.close(sendableCode(code), reason.toString()));
    down.on('close', (code, reason) => {
      if (up.readyState === WebSocket.OPEN) up.close(sendableCode(code), reason.toString());
      else up.terminate();
    });
  });
  const port = (wss.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    fromServer,
    waitFrame(pred, what, timeoutMs = 10_000) {
      const seen = fromServer.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`spy: timed out waiting for ${what}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (f) => {
            clearTimeout(t);
            resolve(f);
          },
        });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
