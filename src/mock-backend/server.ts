// The mock backend's node:http server: routing, body reading and the /_mock admin routes.
// Hot path: no logging, no per-request allocation beyond the body and the answer.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bodyDigest, tokenPieces } from './content.js';
import type { Body, Dialect, Turn } from './dialect.js';
import { chatDialect } from './dialect-chat.js';
import { completionsDialect } from './dialect-completions.js';
import { messagesDialect } from './dialect-messages.js';
import { responsesDialect } from './dialect-responses.js';
import { answerEmbeddings } from './embeddings.js';
import { sendError, sendJson } from './errors.js';
import { Exchange } from './exchange.js';
import { answerStream, answerWhole } from './generate.js';
import { planFor, type PlanDefaults } from './plan.js';
import { MockCounters } from './stats.js';
import type { MockBackend, MockOptions } from './types.js';

type Route = Dialect | 'embeddings';

const ROUTES = new Map<string, Route>([
  ['/v1/chat/completions', chatDialect],
  ['/v1/completions', completionsDialect],
  ['/v1/messages', messagesDialect],
  ['/v1/responses', responsesDialect],
  ['/v1/embeddings', 'embeddings'],
]);

export async function startMockBackend(opts: MockOptions = {}): Promise<MockBackend> {
  const name = opts.name ?? 'mock';
  const models = opts.models && opts.models.length > 0 ? opts.models : ['mock-model'];
  const defaults: PlanDefaults = {
    name,
    tokens: opts.tokens ?? 8,
    tokenDelayMs: opts.tokenDelayMs ?? 0,
    failStatus: opts.failStatus,
  };
  const counters = new MockCounters();
  const created = Math.floor(Date.now() / 1000);
  // static answers are serialised once
  const modelList = JSON.stringify({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created, owned_by: name })),
  });
  const tagList = JSON.stringify({ models: models.map((m) => ({ name: m, model: m })) });
  let seq = 0;
  const resetKeys = new Set<string>();

  function sendStatic(res: ServerResponse, json: string): void {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  }

  function admin(req: IncomingMessage, res: ServerResponse, path: string): void {
    req.resume();
    if (req.method === 'GET' && path === '/_mock/stats') return sendJson(res, 200, counters.snapshot());
    if (req.method === 'POST' && path === '/_mock/reset') {
      counters.reset();
      return sendJson(res, 200, { ok: true });
    }
    sendError(res, 'openai', 404, `unknown mock admin route ${req.method} ${path}`);
  }

  function generate(x: Exchange, route: Route, path: string, raw: string): void {
    const { req, res } = x;
    counters.lastRequest = { method: req.method ?? 'POST', path, headers: req.headers, body: raw };
    const plan = planFor(req.headers, defaults);
    if (plan.reset) return x.resetNow();
    if (plan.resetOnce !== undefined && !resetKeys.has(plan.resetOnce)) {
      resetKeys.add(plan.resetOnce);
      return x.resetNow();
    }
    if (plan.hang) return; // the Exchange counts it aborted when the client gives up
    const style = route === 'embeddings' ? 'openai' : route.errorStyle;
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendError(res, style, 400, 'invalid JSON in request body');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return sendError(res, style, 400, 'request body must be a JSON object');
    }
    const b = body as Body;
    const status = plan.status;
    if (status !== undefined) {
      return x.after(plan.firstDelayMs, () => sendError(res, style, status, `mock backend ${name} failed with status ${status}`));
    }
    const model = typeof b['model'] === 'string' ? b['model'] : (models[0] as string);
    if (route === 'embeddings') return x.after(plan.firstDelayMs, () => answerEmbeddings(res, b, model));
    const turn: Turn = {
      id: `${route.idPrefix}${++seq}`,
      model,
      created: Math.floor(Date.now() / 1000),
      promptTokens: route.promptTokens(b),
      completionTokens: plan.tokens,
      includeUsage: route.includeUsage(b),
      seq: 0,
    };
    const pieces = tokenPieces(name, plan.tokens, plan.splitUtf8, plan.chunkBytes, plan.digest ? bodyDigest(raw) : undefined);
    if (b['stream'] === true) answerStream(x, route, turn, pieces, plan);
    else answerWhole(x, route, turn, pieces, plan);
  }

  const loadedAt = Date.now() + (opts.loadingMs ?? 0);
  // llama-server's answer while it loads its model, to /health and to generation requests alike.
  const LOADING = { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('x-mock-backend', name);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path.startsWith('/_mock/')) return admin(req, res, path);
    counters.hit(path);
    if (Date.now() < loadedAt && (path === '/health' || ROUTES.has(path))) {
      req.resume();
      return sendJson(res, 503, LOADING);
    }

    const route = req.method === 'POST' ? ROUTES.get(path) : undefined;
    if (route !== undefined) {
      const x = new Exchange(req, res, counters);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (x.closed) return;
        const raw = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
        generate(x, route, path, raw);
      });
      return;
    }
    req.resume();
    if (req.method === 'GET' && path === '/health') return sendJson(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/v1/models' && !opts.ollamaOnly) return sendStatic(res, modelList);
    if (req.method === 'GET' && path === '/api/tags' && (opts.ollama || opts.ollamaOnly)) return sendStatic(res, tagList);
    sendError(res, 'openai', 404, `unknown route ${req.method} ${path}`);
  }

  // noDelay: each token goes out as its own segment; requestTimeout 0: hung/long streams are legitimate
  const server = http.createServer({ noDelay: true, requestTimeout: 0, keepAliveTimeout: 30_000 }, handle);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // clients vanishing is routine under load; answer malformed requests, drop the rest quietly
    if (err.code !== 'ECONNRESET' && socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // a deep backlog so bursts of thousands of connections are not refused
    server.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, backlog: 8192 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => {
    if (!opts.quiet) process.stderr.write(`mock backend ${name}: ${String(err)}\n`);
  });

  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    stats: () => counters.snapshot(),
    reset: () => counters.reset(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
