// The client-facing HTTP API: the OpenAI and Anthropic inference routes, /v1/models[/{id}] and
// /health, with the operators' routes beside them. Thin: authenticate (from the headers, before any
// body), validate, build an Exchange, hand it to the relay.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PRIORITIES, RelayError, type Priority } from '../core/index.js';
import type { Credential } from '../auth/index.js';
import type { KeyLimits } from './key-limits.js';
import type { Relay } from './relay.js';
import { INFERENCE_ROUTES, forwardableHeaders } from '../protocol/index.js';
import type { Telemetry } from '../telemetry/index.js';
import { CLIENT_KEY_HEADERS, type ClientGate } from './client-gate.js';
import type { Cors } from './cors.js';
import { Exchange, flavorOf } from './exchange.js';
import { isModelsPath, serveModels } from './models-api.js';
import { allowedModels, checkKeyModel } from './key-models.js';
import { sendError } from './render-error.js';
import { type BodyLimits, parseBody, readBody } from './request-body.js';
import type { BodyBudget } from './body-budget.js';
import { clientAddress, type TrustedProxies } from './client-address.js';
import { ROUTED_PATHS, routingHints } from './routing-hints.js';

/** Client headers that never reach a worker: what a client could forge about where it is (backends
 * behind a worker trust these from 127.0.0.1), and the worker secret. The relay sets its own
 * X-Forwarded-For from the address it saw. */
const CLIENT_DROP = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip', 'forwarded', 'x-worker-secret', 'x-relay-priority']);
/** With --require-api-keys the client's key stops here too: no worker or backend ever sees it. */
const CLIENT_DROP_WITH_KEYS = new Set([...CLIENT_DROP, ...CLIENT_KEY_HEADERS]);

export interface HttpApiOptions {
  relay: Relay;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  budget: BodyBudget;
  proxies: TrustedProxies;
  version: string;
  startedAt: number;
  telemetry: Telemetry;
  /** With --require-api-keys. */
  clientGate?: ClientGate;
  /** Keys' requests_per_minute / tokens_per_minute, with --require-api-keys. */
  keyLimits?: KeyLimits;
  /** With --cors-origins. */
  cors?: Cors;
  /** --routing cache-aware: hash prompts and read affinity keys for the scheduler. */
  cacheAware?: boolean;
  /** /admin/*, /metrics, /dashboard: true if it answered. */
  operatorRoutes?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean;
}

export function createHttpHandler(opts: HttpApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { relay } = opts;
  const limits: BodyLimits = { maxBytes: opts.maxBodyBytes, timeoutMs: opts.bodyTimeoutMs, budget: opts.budget };
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const path = pathOf(req.url);
    const flavor = flavorOf(path);
    if (INFERENCE_ROUTES.has(path)) {
      if (opts.cors?.apply(req, res, 'POST')) return;
      if (req.method !== 'POST') return methodNotAllowed(res, flavor, 'POST');
      const key = opts.clientGate?.check(req, res, flavor, path);
      if (key === null) return;
      const limited = key && opts.keyLimits?.admit(key);
      if (limited) {
        // Refused before the body: don't wait for it.
        if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.setHeader('connection', 'close');
        res.setHeader('retry-after', String(limited.retryAfterSecs));
        opts.telemetry.rejected(path, 429);
        opts.telemetry.keyLimited(key.name, limited.limit);
        sendError(res, flavor, limited.error);
        req.resume();
        return;
      }
      return handleInference(req, res, path, opts, limits, key);
    }
    if (isModelsPath(path)) {
      if (opts.cors?.apply(req, res, 'GET')) return;
      const key = opts.clientGate?.check(req, res, flavor, path);
      if (key === null) return;
      return serveModels(req, res, path, relay.scheduler, opts.startedAt, allowedModels(key));
    }
    if (path === '/health' || path === '/healthz') {
      return json(res, relay.isClosing ? 503 : 200, {
        status: relay.isClosing ? 'shutting_down' : 'ok',
        version: opts.version,
        workers_connected: relay.scheduler.workerCount,
        queue_depth: relay.scheduler.queueDepth,
        uptime_secs: Math.floor((Date.now() - opts.startedAt) / 1000),
      });
    }
    if (opts.operatorRoutes?.(req, res, path)) return;
    sendError(res, flavor, new RelayError('route_not_found', `No route for ${req.method} ${path}.`));
  };
  // A bug in a handler must cost one request, never the process.
  return (req, res) => {
    try {
      route(req, res);
    } catch (err) {
      console.error(err);
      if (!res.headersSent) sendError(res, flavorOf(pathOf(req.url)), new RelayError('internal_error', 'Internal relay error.'));
      else res.destroy();
    }
  };
}

function handleInference(req: IncomingMessage, res: ServerResponse, path: string, opts: HttpApiOptions, limits: BodyLimits, key: Credential | undefined): void {
  const { relay } = opts;
  const flavor = flavorOf(path);
  if (relay.isClosing) {
    req.resume();
    opts.telemetry.rejected(path, 503);
    return sendError(res, flavor, new RelayError('shutting_down', 'The relay is shutting down; retry shortly.'));
  }
  readBody(req, res, limits, (readErr, buf) => {
    // Not a RelayError: the client's connection failed mid-body, and there is no one to answer.
    if (readErr && !(readErr instanceof RelayError)) return;
    try {
      if (readErr) throw readErr;
      const body = parseBody(buf);
      checkKeyModel(key, body.model, body.raw);
      if (res.destroyed) return; // the client left while we read
      const headers = forwardableHeaders(req.headers, opts.clientGate ? CLIENT_DROP_WITH_KEYS : CLIENT_DROP);
      const client = clientAddress(req, opts.proxies);
      headers['x-forwarded-for'] = client;
      relay.submit(
        new Exchange({
          id: relay.newRequestId(),
          model: body.model,
          flavor,
          endpoint: path,
          streaming: body.stream,
          body: body.raw,
          headers,
          res,
          now: performance.now(),
          key,
          // Fair turns per client key when keys are in use, else per client address.
          tenant: key ? `key:${key.id}` : client,
          priority: priorityOf(key?.policy.priority, req.headers['x-relay-priority']),
          tenantLimit: key?.policy.max_concurrent ?? 0,
          routing: opts.cacheAware && ROUTED_PATHS.has(path) ? routingHints(body.json, body.model, req.headers['x-session-id']) : undefined,
        }),
      );
    } catch (err) {
      const e = err instanceof RelayError ? err : new RelayError('internal_error', 'Internal relay error.');
      // The rest of the body was never read: this connection can't carry another request.
      if (e.code === 'body_too_large' || e.code === 'server_busy' || e.code === 'body_timeout') res.setHeader('connection', 'close');
      opts.telemetry.rejected(path, e.status);
      sendError(res, flavor, e);
      if (!(err instanceof RelayError)) console.error(err);
    }
  });
}

/** The key's priority (normal without one), lowered by `X-Relay-Priority` if asked: never raised. */
function priorityOf(keyPriority: Priority | undefined, header: string | string[] | undefined): Priority {
  const base = keyPriority ?? 'normal';
  if (typeof header !== 'string') return base;
  const asked = PRIORITIES.indexOf(header.trim().toLowerCase() as Priority);
  return asked > PRIORITIES.indexOf(base) ? PRIORITIES[asked]! : base;
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  const p = q < 0 ? u : u.slice(0, q);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function methodNotAllowed(res: ServerResponse, flavor: 'openai' | 'anthropic', allow: string): void {
  res.setHeader('allow', allow);
  sendError(res, flavor, new RelayError('method_not_allowed', `Use ${allow} for this route.`));
}
