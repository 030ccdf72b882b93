// GET /v1/models and GET /v1/models/{id}: the models connected workers serve, and the aliases
// (--model-alias) with a target served, in OpenAI's shape, or in Anthropic's when the request carries
// `anthropic-version` (the Anthropic SDK always sends it). An alias is marked with `alias_of`, its
// targets: a field clients ignore.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError, type Scheduler } from '../core/index.js';
import { MAX_MODEL_NAME } from './config.js';
import { notAllowed } from './key-models.js';
import { sendError, type ApiFlavor } from './render-error.js';

const PREFIX = '/v1/models';

export function isModelsPath(path: string): boolean {
  return path === PREFIX || path.startsWith(`${PREFIX}/`);
}

/** `path` is the request path without query or trailing slash; ids may contain '/' (`Qwen/Qwen2.5-7B`),
 * raw or percent-encoded (the SDKs send `%2F`). `allowed`: a key's allowlist, which limits the list
 * and makes any other id 403. */
export function serveModels(req: IncomingMessage, res: ServerResponse, path: string, scheduler: Scheduler, startedAt: number, allowed?: readonly string[]): void {
  const flavor: ApiFlavor = req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai';
  if (req.method !== 'GET') {
    res.setHeader('allow', 'GET');
    return sendError(res, flavor, new RelayError('method_not_allowed', 'Use GET for this route.'));
  }
  if (path === PREFIX) {
    const entries = allowed ? listed(scheduler).filter((e) => allowed.includes(e.id)) : listed(scheduler);
    return json(res, flavor === 'anthropic' ? anthropicPage(entries, req.url ?? '', startedAt) : { object: 'list', data: entries.map((e) => openaiModel(e, startedAt)) });
  }
  let id: string;
  try {
    id = decodeURIComponent(path.slice(PREFIX.length + 1));
  } catch {
    return sendError(res, flavor, new RelayError('invalid_request', 'The model id in the path is not valid percent-encoding.'));
  }
  if (id === '') return sendError(res, flavor, new RelayError('model_not_found', 'The path names no model id.'));
  if (id.length > MAX_MODEL_NAME) {
    return sendError(res, flavor, new RelayError('model_not_found', `No model has an id of ${id.length} characters; the limit is ${MAX_MODEL_NAME}.`));
  }
  if (allowed && !allowed.includes(id)) return sendError(res, flavor, notAllowed(id, allowed));
  if (!scheduler.serves(id)) return sendError(res, flavor, new RelayError('model_not_found', scheduler.notServedMessage(id)));
  const entry: Entry = { id, aliasOf: scheduler.aliases.get(id)?.targets };
  json(res, flavor === 'anthropic' ? anthropicModel(entry, startedAt) : openaiModel(entry, startedAt));
}

interface Entry {
  id: string;
  /** Set for an alias: its targets. */
  aliasOf: readonly string[] | undefined;
}

/** Served models and served aliases, sorted by id; an alias takes the place of a model of its name. */
function listed(scheduler: Scheduler): Entry[] {
  const entries = new Map<string, Entry>();
  for (const id of scheduler.models()) entries.set(id, { id, aliasOf: undefined });
  for (const a of scheduler.aliases.all()) if (scheduler.serves(a.name)) entries.set(a.name, { id: a.name, aliasOf: a.targets });
  return [...entries.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

function openaiModel(e: Entry, startedAt: number): object {
  return { id: e.id, object: 'model', created: Math.floor(startedAt / 1000), owned_by: 'modelrelay', ...(e.aliasOf ? { alias_of: e.aliasOf } : {}) };
}

function anthropicModel(e: Entry, startedAt: number): object {
  return { type: 'model', id: e.id, display_name: e.id, created_at: new Date(startedAt).toISOString(), ...(e.aliasOf ? { alias_of: e.aliasOf } : {}) };
}

/** Anthropic's cursor paging: `limit` (default 20, 1–1000), `after_id` or `before_id`. Cursors compare
 * by name (the list is sorted), so a page stays right when models come and go between calls. */
function anthropicPage(entries: Entry[], url: string, startedAt: number): object {
  const q = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const limit = Math.min(1000, Math.max(1, Math.floor(Number(q.get('limit') ?? 20)) || 20));
  const after = q.get('after_id');
  const before = q.get('before_id');
  const rest = after !== null ? entries.filter((e) => e.id > after) : before !== null ? entries.filter((e) => e.id < before) : entries;
  // Going backwards, the page is the `limit` ids just before the cursor.
  const page = after === null && before !== null ? rest.slice(-limit) : rest.slice(0, limit);
  return { data: page.map((e) => anthropicModel(e, startedAt)), has_more: rest.length > page.length, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null };
}

function json(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
