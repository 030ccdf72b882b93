// Stand-ins the tests script by hand: a fake relay (a raw WebSocket server a real worker connects
// to) and a scripted HTTP backend (a real worker forwards to it). Every wait on them is bounded.
import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { Arrivals, within } from '../helpers/bounded.js';
import { PROTOCOL_VERSION, parseFrame } from './faults-util.js';

// ---------- a fake relay ----------

export interface FakeLink {
  ws: WebSocket;
  /** The upgrade request's URL (path and query) and headers. */
  url: URL;
  headers: IncomingHttpHeaders;
  /** Frames the worker sent, parsed (binary frames unpacked). */
  frames: Arrivals<any>;
  closed: Promise<{ code: number; reason: string }>;
  send(msg: unknown): void;
  /** Answers the worker's register with a register_ack accepting `extensions` (default: none, i.e. a base server). */
  ack(extensions?: string[], extra?: Record<string, unknown>): Promise<any>;
}

export interface FakeRelay {
  url: string;
  links: Arrivals<FakeLink>;
  /** The n-th connection (1-based), once it arrives. */
  link(n: number, ms?: number): Promise<FakeLink>;
  close(): Promise<void>;
}

/**
 * `autoAck`: answer every link's register at once with an ack accepting these extensions (`[]`: none).
 * `port`: listen there instead of on a free port.
 */
export async function startFakeRelay(opts: { autoAck?: string[]; port?: number } = {}): Promise<FakeRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: opts.port ?? 0, perMessageDeflate: false });
  await within(once(wss, 'listening'), 'the fake relay to listen');
  const links = new Arrivals<FakeLink>('fake relay');
  wss.on('connection', (ws, req) => {
    const frames = new Arrivals<any>(`fake relay, link ${links.all.length + 1}`);
    ws.on('message', (d: RawData, isBinary: boolean) => frames.push(parseFrame(d, isBinary)));
    ws.on('error', () => {});
    const closed = once(ws, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
    void closed.then(() => frames.close('the worker closed the link'), () => {});
    const send = (msg: unknown): void => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    const link: FakeLink = {
      ws,
      url: new URL(req.url ?? '/', 'http://fake'),
      headers: req.headers,
      frames,
      closed,
      send,
      async ack(extensions, extra = {}) {
        const reg = await frames.next((f) => f.type === 'register', 'register');
        send({ type: 'register_ack', worker_id: `w${links.all.length}`, models: reg.models, protocol_version: PROTOCOL_VERSION, ...(extensions ? { extensions } : {}), ...extra });
        return reg;
      },
    };
    links.push(link);
    if (opts.autoAck) void link.ack(opts.autoAck.length ? opts.autoAck : undefined).catch(() => {});
  });
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    links,
    link: (n, ms) => links.next(() => links.all.length >= n, `connection #${n}`, ms).then(() => links.all[n - 1]!),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const l of links.all) l.frames.close('the fake relay closed');
        links.close('the fake relay closed');
        wss.close(() => resolve());
      }),
  };
}

// ---------- a scripted backend ----------

export interface BackendCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface ScriptedBackend {
  url: string;
  calls: Arrivals<BackendCall>;
  /** What GET /v1/models lists; tests may change it. */
  models: string[];
  close(): Promise<void>;
}

/**
 * A small OpenAI/Anthropic-shaped backend that records every call. GET /v1/models lists `models`;
 * POST /v1/messages/count_tokens answers {"input_tokens": 7}; any other POST answers 200 with a
 * JSON echo of the path it was called on.
 */
export async function startScriptedBackend(models: string[] = ['scripted-model']): Promise<ScriptedBackend> {
  const calls = new Arrivals<BackendCall>('scripted backend');
  const state = { models };
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      calls.push({ method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(parts).toString('utf8') });
      let answer: unknown;
      if (req.method === 'GET' && path === '/v1/models') answer = { object: 'list', data: state.models.map((id) => ({ id, object: 'model' })) };
      else if (req.method === 'POST' && path === '/v1/messages/count_tokens') answer = { input_tokens: 7 };
      else if (req.method === 'POST') answer = { echo: path };
      else {
        res.writeHead(404, { 'content-type': 'application/json' });
        return res.end('{"error":{"message":"no such route","type":"invalid_request_error"}}');
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  await within(new Promise<void>((r) => server.listen(0, '127.0.0.1', r)), 'the scripted backend to listen');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    get models() {
      return state.models;
    },
    set models(m: string[]) {
      state.models = m;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
