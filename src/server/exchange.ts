// One client request on its way through the relay: what was asked, and how the answer is written back.
// States: waiting (no byte sent) → streaming (SSE headers out) → ended. Once a byte is out the request
// can't be retried, and a failure becomes an SSE error event instead of an error status.
import type { ServerResponse } from 'node:http';
import { allForwardable, forwardableHeaders, modelValueSpans, spliceSpans, type MessageOf, type TokenCounts, type WorkerMessage } from '../protocol/index.js';
import { RelayError, type Priority, type RouteReason, type RoutingHints } from '../core/index.js';
import type { FlowCredit } from './flow-credit.js';
import { type ApiFlavor, errorEvent, sendError } from './render-error.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};
const JSON_TYPE = 'application/json';
/** Bytes of a body decoded to look for its `model` before decoding all of it (an alias's rewrite). */
const MODEL_SCAN_HEAD = 4096;
/** Never relayed: one origin fronts many backends, so a backend's cookies would land on all of them
 * (and several Set-Cookie lines can't be kept apart once joined). */
const RESPONSE_DROP: ReadonlySet<string> = new Set(['set-cookie']);

export interface ExchangeInit {
  id: string;
  model: string;
  flavor: ApiFlavor;
  endpoint: string;
  streaming: boolean;
  /** The client's body as received (valid UTF-8 JSON), kept for dispatch and any requeue. */
  body: Buffer;
  headers: Record<string, string>;
  res: ServerResponse;
  now: number;
  /** Whose turn it is in the fair queue (client key or address), and its priority. */
  tenant?: string;
  priority?: Priority;
  /** The tenant's in-flight limit (its key's max_concurrent), 0 = none. */
  tenantLimit?: number;
  /** The client key that authorised it (with --require-api-keys). */
  key?: { readonly id: string; readonly name: string };
  /** Prompt prefix hashes and affinity key, with --routing cache-aware. */
  routing?: RoutingHints;
}

export class Exchange {
  readonly id: string;
  readonly model: string;
  readonly flavor: ApiFlavor;
  readonly endpoint: string;
  readonly streaming: boolean;
  readonly body: Buffer;
  readonly headers: Record<string, string>;
  readonly res: ServerResponse;
  readonly receivedAt: number;
  readonly key: { readonly id: string; readonly name: string } | undefined;
  /** performance.now() of the last dispatch and of the first byte out, for telemetry. */
  dispatchedAt: number | undefined;
  firstByteAt: number | undefined;
  workerId: string | undefined;
  workerName: string | undefined;
  /** For a request that named an alias: the target it was last sent as. */
  target: string | undefined;
  readonly routing: RoutingHints | undefined;
  /** Why its last dispatch went to that worker, and the prompt blocks that worker had been sent. */
  route: RouteReason | undefined;
  matchedBlocks = 0;
  /** Where the body's `model` value is, found at the first dispatch to a target (see bodyAs). */
  private modelSpans: number[] | undefined;
  status = 0;
  tokenCounts: TokenCounts | undefined;
  errorCode: string | undefined;
  /** Set when the worker speaks flow-control. */
  flow: FlowCredit | undefined;
  readonly tenant: string;
  readonly priority: Priority;
  readonly tenantLimit: number;
  /** The backend's answer has begun reaching the client (keep-alive comments while queued don't
   * count): from then on the request can't be retried elsewhere. */
  answered = false;

  constructor(init: ExchangeInit) {
    this.id = init.id;
    this.model = init.model;
    this.flavor = init.flavor;
    this.endpoint = init.endpoint;
    this.streaming = init.streaming;
    this.body = init.body;
    this.headers = init.headers;
    this.res = init.res;
    this.receivedAt = init.now;
    this.tenant = init.tenant ?? '';
    this.priority = init.priority ?? 'normal';
    this.tenantLimit = init.tenantLimit ?? 0;
    this.key = init.key;
    this.routing = init.routing;
  }

  /** The body with its top-level `model` set to `target` (an alias's target), every other byte as
   * the client sent it, in pieces (views of the body around the new value: the frame copies them).
   * The scan runs once per request, however often it is requeued. */
  bodyAs(target: string): Buffer[] {
    // The latin1 view has one char per byte, so its offsets are byte offsets (body-model.ts). Most
    // bodies name their model early: the first few KiB are decoded first, the whole only if needed.
    if (this.modelSpans === undefined) {
      const head = this.body.length > MODEL_SCAN_HEAD ? modelValueSpans(this.body.toString('latin1', 0, MODEL_SCAN_HEAD)) : undefined;
      this.modelSpans = head !== undefined && head.length > 0 ? head : (modelValueSpans(this.body.toString('latin1')) ?? []);
    }
    // parseBody found a string `model`, so the scan finds it too; if not, the body goes unchanged.
    return this.modelSpans.length > 0 ? spliceSpans(this.body, this.modelSpans, target) : [this.body];
  }

  /** A byte of the backend's answer has been written to the client. */
  get started(): boolean {
    return this.answered;
  }

  /** Queued stream (--queue-keepalive): SSE headers now, then a comment every so often, which SDKs
   * ignore, so no proxy or client gives up while the request waits. */
  keepAlive(position: number | undefined): void {
    if (this.ended) return;
    if (!this.res.headersSent) this.res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': this.id });
    this.res.write(position === undefined ? ': queued\n\n' : `: queued, position ${position}\n\n`);
  }

  get ended(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** Passes a piece of the answer through; returns false when the client's socket is backed up. */
  writeChunk(chunk: string): boolean {
    this.answered = true;
    if (!this.res.headersSent) {
      this.status = 200;
      this.firstByteAt = performance.now();
      this.res.writeHead(200, this.streaming ? { ...SSE_HEADERS, 'x-request-id': this.id } : { 'content-type': JSON_TYPE, 'x-request-id': this.id });
      // Headers go out with the first chunk in one packet; Nagle is off on the socket.
    }
    const flushed = this.res.write(chunk);
    this.flow?.wrote(Buffer.byteLength(chunk), flushed);
    return flushed;
  }

  complete(msg: MessageOf<WorkerMessage, 'response_complete'>): void {
    this.tokenCounts = msg.token_counts;
    this.answered = true;
    if (this.ended) return;
    if (this.res.headersSent) {
      // A stream that began: a late error status becomes an SSE error event.
      if (msg.status_code >= 400) {
        const err = new RelayError('backend_error', backendMessage(msg.status_code, msg.body));
        this.errorCode = err.code;
        this.res.end(errorEvent(this.flavor, err));
      } else {
        this.res.end(msg.body ?? '');
      }
      return;
    }
    const status = msg.status_code;
    // 1xx can't end a response (101 would even hand the connection over): the worker is broken.
    if (status < 200) return this.fail(new RelayError('backend_error', `The worker answered with status ${status}, which can't end a response.`));
    this.status = status;
    this.firstByteAt = performance.now();
    // The frame's headers object is ours (freshly parsed): reused when nothing in it must go.
    const headers: Record<string, string | number> = msg.headers ? (allForwardable(msg.headers, RESPONSE_DROP) ? msg.headers : forwardableHeaders(msg.headers, RESPONSE_DROP)) : {};
    // Lets a client or operator match a response to the relay's log line. Given to writeHead, not
    // setHeader, so node:http renders the headers in one pass.
    headers['x-request-id'] = this.id;
    if (status === 204 || status === 304) {
      // No body and no length, whatever the worker sent (RFC 9110 §6.4.1).
      delete headers['content-type'];
      if (this.writeHead(status, headers)) this.res.end();
      return;
    }
    if (this.streaming && status < 300 && msg.body === undefined) Object.assign(headers, SSE_HEADERS);
    if (headers['content-type'] === undefined && msg.body !== undefined) headers['content-type'] = JSON_TYPE;
    const body = msg.body ?? '';
    headers['content-length'] = Buffer.byteLength(body);
    if (this.writeHead(status, headers)) this.res.end(body);
  }

  /** False when node:http refused a header name or value HTTP forbids (a broken or hostile
   * worker): nothing is out yet, so the client gets a clean 502 instead. */
  private writeHead(status: number, headers: Record<string, string | number>): boolean {
    try {
      this.res.writeHead(status, headers);
      return true;
    } catch (err) {
      this.res.statusMessage = ''; // writeHead kept the first status's text: let the 502 choose its own
      this.fail(new RelayError('backend_error', `The worker's answer carried a header HTTP does not allow: ${(err as Error).message}`));
      return false;
    }
  }

  fail(err: RelayError): void {
    this.errorCode = err.code;
    if (!this.res.headersSent) this.status = err.status;
    sendError(this.res, this.flavor, err, this.id);
  }
}

export function flavorOf(path: string): ApiFlavor {
  return path.startsWith('/v1/messages') ? 'anthropic' : 'openai';
}


function backendMessage(status: number, body: string | undefined): string {
  let detail = '';
  if (body) {
    try {
      const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
      const e = parsed.error;
      detail = typeof e === 'string' ? e : typeof e?.message === 'string' ? e.message : typeof parsed.message === 'string' ? parsed.message : '';
    } catch {
      detail = body.slice(0, 200);
    }
  }
  return `The response failed mid-stream (status ${status})${detail ? `: ${detail.replace(/\.+$/, '')}` : ''}.`;
}
