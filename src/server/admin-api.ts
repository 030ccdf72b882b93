// The admin API (--admin-token): workers (list, drain, refresh models), stats, client keys and
// worker tokens (issue, list with usage, revoke). Errors in the OpenAI shape; every route is in the
// README with its statuses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth, Credential, CredentialSet } from '../auth/index.js';
import { RelayError } from '../core/index.js';
import { emptyUsage, type KeyUsage } from '../store/index.js';
import type { Telemetry } from '../telemetry/index.js';
import type { AdminGate } from './admin-gate.js';
import type { Relay } from './relay.js';
import { sendError } from './render-error.js';
import { BodyBudget } from './body-budget.js';
import { type BodyLimits, readBody } from './request-body.js';

/** Admin bodies are one small JSON object, from an authenticated caller. */
const ADMIN_BODY_LIMITS: BodyLimits = { maxBytes: 16 * 1024, timeoutMs: 10_000, budget: new BodyBudget(0) };
const MAX_NAME = 128;

export interface AdminApiOptions {
  gate: AdminGate;
  relay: Relay;
  auth: Auth;
  telemetry: Telemetry;
  /** Stored usage per key, pending writes included. */
  usage: () => Map<string, KeyUsage>;
}

export class AdminApi {
  constructor(private readonly opts: AdminApiOptions) {}

  handle(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (!this.opts.gate.allow(req, res)) return;
    const parts = path.split('/').slice(2); // '/admin/keys/x' → ['keys', 'x']
    const [collection, id, action] = parts;
    try {
      switch (collection) {
        case 'workers':
          if (id === undefined) return this.only(req, res, 'GET', () => json(res, 200, { data: this.opts.relay.workers() }));
          if (parts.length === 3 && action === 'drain') return this.only(req, res, 'POST', () => this.workerAction(res, id, (w) => this.opts.relay.drainWorker(w)));
          if (parts.length === 3 && action === 'refresh-models') return this.only(req, res, 'POST', () => this.workerAction(res, id, (w) => this.opts.relay.refreshModels(w)));
          break;
        case 'stats':
          if (parts.length === 1) return this.only(req, res, 'GET', () => json(res, 200, { queue_depth: this.opts.relay.scheduler.queueDepth, ...this.opts.telemetry.statsView(performance.now()) }));
          break;
        case 'keys':
        case 'worker-tokens': {
          const set = collection === 'keys' ? this.opts.auth.clientKeys : this.opts.auth.workerTokens;
          if (!set) break;
          if (parts.length === 1) {
            if (req.method === 'GET') return json(res, 200, { data: this.list(set) });
            if (req.method === 'POST') return this.issue(req, res, set);
            return methodNotAllowed(req, res, 'GET, POST');
          }
          if (parts.length === 2) return this.only(req, res, 'DELETE', () => this.revoke(res, set, id!));
          break;
        }
      }
    } catch (err) {
      console.error(err);
      return sendError(res, 'openai', new RelayError('internal_error', 'Internal relay error.'));
    }
    req.resume();
    sendError(res, 'openai', new RelayError('route_not_found', `No admin route for ${req.method} ${path}.`));
  }

  private only(req: IncomingMessage, res: ServerResponse, method: string, run: () => void): void {
    if (req.method !== method) return methodNotAllowed(req, res, method);
    if (method !== 'POST') req.resume();
    run();
  }

  private workerAction(res: ServerResponse, id: string, act: (id: string) => boolean): void {
    if (!act(id)) return sendError(res, 'openai', new RelayError('not_found', `No connected worker has the id '${id}'.`));
    const w = this.opts.relay.workers().find((x) => x.id === id);
    json(res, 202, w ?? { id });
  }

  private list(set: CredentialSet): unknown[] {
    const usage = set.kind === 'client_key' ? this.opts.usage() : undefined;
    return set.list().map((c) => ({ ...view(c), ...(usage ? { usage: usageView(usage.get(c.id) ?? emptyUsage()) } : {}) }));
  }

  private issue(req: IncomingMessage, res: ServerResponse, set: CredentialSet): void {
    readBody(req, res, ADMIN_BODY_LIMITS, (err, buf) => {
      if (err && !(err instanceof RelayError)) return;
      try {
        if (err) throw err;
        const name = parseName(buf);
        const issued = set.issue(name, Date.now());
        json(res, 201, { ...view(issued), secret: issued.secret });
      } catch (e) {
        sendError(res, 'openai', e instanceof RelayError ? e : new RelayError('internal_error', `Could not store the credential: ${(e as Error).message}`));
        if (!(e instanceof RelayError)) console.error(e);
      }
    });
  }

  private revoke(res: ServerResponse, set: CredentialSet, id: string): void {
    if (!set.revoke(id, Date.now())) return sendError(res, 'openai', new RelayError('not_found', `No valid ${set.kind === 'client_key' ? 'key' : 'worker token'} has the id '${id}'.`));
    res.writeHead(204);
    res.end();
  }
}

function parseName(buf: Buffer): string {
  let body: unknown;
  try {
    body = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new RelayError('invalid_request', "The body must be a JSON object with a 'name' string.");
  }
  const name = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { name?: unknown }).name : undefined;
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new RelayError('invalid_request', `'name' must be a string of 1 to ${MAX_NAME} printable characters.`);
  }
  return name.trim();
}

function view(c: Credential): { id: string; name: string; prefix: string; created_at: string } {
  return { id: c.id, name: c.name, prefix: c.prefix, created_at: new Date(c.createdAt).toISOString() };
}

function usageView(u: KeyUsage): unknown {
  const total = Object.values(u.requests).reduce((a, b) => a + b, 0);
  return {
    requests: { total, ...u.requests },
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    last_used_at: u.lastUsedAt === undefined ? null : new Date(u.lastUsedAt).toISOString(),
  };
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  req.resume();
  res.setHeader('allow', allow);
  sendError(res, 'openai', new RelayError('method_not_allowed', `Use ${allow} for this route.`));
}
