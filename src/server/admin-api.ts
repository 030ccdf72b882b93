// The admin API (--admin-token): workers (list, drain, refresh models), stats, client keys and
// worker tokens (issue, list with usage, revoke). Errors in the OpenAI shape; every route is in the
// README with its statuses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth, Credential, CredentialSet } from '../auth/index.js';
import { RelayError } from '../core/index.js';
import { emptyUsage, type KeyPolicy, type KeyUsage } from '../store/index.js';
import type { KeyLimits } from './key-limits.js';
import type { Telemetry } from '../telemetry/index.js';
import type { AdminGate } from './admin-gate.js';
import type { Relay } from './relay.js';
import { sendError } from './render-error.js';
import { BodyBudget } from './body-budget.js';
import { type BodyLimits, readBody } from './request-body.js';
import { MAX_MODEL_NAME } from './config.js';

/** Admin bodies are one small JSON object, from an authenticated caller. */
const ADMIN_BODY_LIMITS: BodyLimits = { maxBytes: 16 * 1024, timeoutMs: 10_000, budget: new BodyBudget(0) };
const MAX_NAME = 128;
/** Names in one key's model allowlist. */
const MAX_KEY_MODELS = 256;

export interface AdminApiOptions {
  gate: AdminGate;
  relay: Relay;
  auth: Auth;
  telemetry: Telemetry;
  /** Stored usage per key, pending writes included. */
  usage: () => Map<string, KeyUsage>;
  /** Keys' rate-limit windows (with --require-api-keys): use in the last minute. */
  keyLimits?: KeyLimits;
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
          if (parts.length === 2 && set.kind === 'client_key' && req.method === 'PATCH') return this.patch(req, res, set, id!);
          if (parts.length === 2) return this.only(req, res, set.kind === 'client_key' && req.method !== 'DELETE' ? 'DELETE, PATCH' : 'DELETE', () => this.revoke(res, set, id!));
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
    if (set.kind !== 'client_key') return set.list().map(view);
    const usage = this.opts.usage();
    return set.list().map((c) => this.keyView(c, usage));
  }

  /** A key with its policy, stored usage and what it uses now (in flight, last minute). */
  private keyView(c: Credential, usage: Map<string, KeyUsage>): unknown {
    const minute = this.opts.keyLimits?.lastMinute(c.id);
    return {
      ...view(c),
      ...policyView(c.policy),
      usage: {
        ...(usageView(usage.get(c.id) ?? emptyUsage()) as object),
        in_flight: this.opts.relay.inFlightForKey(c.id),
        requests_last_minute: minute?.requests ?? 0,
        tokens_last_minute: minute?.tokens ?? 0,
      },
    };
  }

  private patch(req: IncomingMessage, res: ServerResponse, set: CredentialSet, id: string): void {
    readBody(req, res, ADMIN_BODY_LIMITS, (err, buf) => {
      if (err && !(err instanceof RelayError)) return;
      try {
        if (err) throw err;
        const current = set.get(id);
        if (!current) throw new RelayError('not_found', `No valid key has the id '${id}'.`);
        const body = parseObject(buf, 'a JSON object with the fields to change');
        const changed = set.setPolicy(id, parsePolicy(body, current.policy));
        if (!changed) throw new RelayError('not_found', `No valid key has the id '${id}'.`);
        json(res, 200, this.keyView(changed, this.opts.usage()));
      } catch (e) {
        sendError(res, 'openai', e instanceof RelayError ? e : new RelayError('internal_error', `Could not store the key: ${(e as Error).message}`));
        if (!(e instanceof RelayError)) console.error(e);
      }
    });
  }

  private issue(req: IncomingMessage, res: ServerResponse, set: CredentialSet): void {
    readBody(req, res, ADMIN_BODY_LIMITS, (err, buf) => {
      if (err && !(err instanceof RelayError)) return;
      try {
        if (err) throw err;
        const body = parseObject(buf, "a JSON object with a 'name' string");
        const name = parseName(body);
        const policy = set.kind === 'client_key' ? parsePolicy(body, {}) : {};
        const issued = set.issue(name, Date.now(), policy);
        json(res, 201, { ...view(issued), ...(set.kind === 'client_key' ? policyView(issued.policy) : {}), secret: issued.secret });
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

function parseObject(buf: Buffer, what: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new RelayError('invalid_request', `The body must be ${what}.`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RelayError('invalid_request', `The body must be ${what}.`);
  return body as Record<string, unknown>;
}

const LIMIT_FIELDS = ['max_concurrent', 'requests_per_minute', 'tokens_per_minute'] as const;

/** The policy fields of a body over `base`: each may be set, or cleared with null; 400 names a bad one. */
function parsePolicy(body: Record<string, unknown>, base: KeyPolicy): KeyPolicy {
  const out: KeyPolicy = { ...base };
  if ('priority' in body) {
    const p = body['priority'];
    if (p === null) delete out.priority;
    else if (p === 'high' || p === 'normal' || p === 'low') out.priority = p;
    else throw new RelayError('invalid_request', "'priority' must be \"high\", \"normal\" or \"low\".");
  }
  if ('models' in body) {
    const m = body['models'];
    if (m === null) delete out.models;
    else out.models = parseModels(m);
  }
  for (const f of LIMIT_FIELDS) {
    if (!(f in body)) continue;
    const v = body[f];
    if (v === null) delete out[f];
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 1e9) out[f] = v;
    else throw new RelayError('invalid_request', `'${f}' must be a whole number of at least 1, or null for no limit.`);
  }
  return out;
}

/** A key's allowlist: model or alias names, each once. */
function parseModels(m: unknown): string[] {
  const bad = (): RelayError => new RelayError('invalid_request', `'models' must be a list of 1 to ${MAX_KEY_MODELS} model or alias names (each 1 to ${MAX_MODEL_NAME} characters), or null for any model.`);
  if (!Array.isArray(m) || m.length === 0 || m.length > MAX_KEY_MODELS) throw bad();
  for (const x of m) if (typeof x !== 'string' || x.length === 0 || x.length > MAX_MODEL_NAME) throw bad();
  return [...new Set(m as string[])];
}

function policyView(p: KeyPolicy): { priority: string; max_concurrent: number | null; requests_per_minute: number | null; tokens_per_minute: number | null; models: string[] | null } {
  return {
    priority: p.priority ?? 'normal',
    max_concurrent: p.max_concurrent ?? null,
    requests_per_minute: p.requests_per_minute ?? null,
    tokens_per_minute: p.tokens_per_minute ?? null,
    models: p.models ?? null,
  };
}

function parseName(body: Record<string, unknown>): string {
  const name = body['name'];
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
