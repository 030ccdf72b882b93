// Runs one relayed request against the backend: forwards it, streams the answer back as whole SSE
// events, reports usage, and stops the backend call the moment it is cancelled.
// With flow-control, it stops reading the backend once `window` bytes are unacknowledged.
import type { Dispatcher } from 'undici';
import { RequestErrorCode, forwardableHeaders, rewriteModel, type MessageOf, type ServerMessage, type TokenCounts, type WorkerMessage } from '../protocol/index.js';
import type { BackendClient } from './backend-client.js';
import { describeFailure } from './backend-health.js';
import { SseSplitter } from './sse-splitter.js';
import { UsageCollector } from './usage.js';

type Request = MessageOf<ServerMessage, 'request'>;
type DispatchController = Dispatcher.DispatchController;

export interface RunnerOptions {
  backend: BackendClient;
  /** Sends a message; `bodyBytes` (response_complete only) stands for its body, as raw bytes. */
  send(msg: WorkerMessage, bodyBytes?: Buffer): void;
  backendApiKey?: string;
  /** Largest body a single frame may carry. */
  maxBodyBytes: number;
  /** flow-control window in bytes, or undefined when the server doesn't speak it. */
  flowWindow?: number;
  /** Reply to a cancel with response_complete 499 (cancel-ack). */
  cancelAck: boolean;
  /** The server re-routes a request whose backend was unavailable (backend-health + request-error):
   * report such a failure as `error` backend_unavailable instead of answering 502. */
  retryElsewhere: boolean;
  /** Health bookkeeping: a call failed before any answer (unreachable, reset, loading) / got one. */
  backendDown(reason: string): void;
  backendAnswered(): void;
}

export type RunnerOutcome = 'completed' | 'cancelled' | 'failed';

// Client headers that must not reach the backend: we want an uncompressed body to relay as text.
const DROP_TO_BACKEND = new Set(['accept-encoding', 'x-worker-secret']);
// set-cookie: the relay's one origin fronts many backends (the server drops it too, for other workers).
const DROP_FROM_BACKEND = new Set(['content-encoding', 'date', 'server', 'set-cookie']);

/** One backend call's handler. The runner is its own undici dispatch handler (methods, not a fresh
 * set of closures per call): this is the worker's hottest path. */
export class RequestRunner implements Dispatcher.DispatchHandler {
  readonly id: string;
  private cancelled = false;
  private silent = false;
  /** Part of the answer went to the server (a stream's events): from then on a failure is the
   * client's to see, as an error event. */
  private forwarded = false;
  private unacked = 0;
  private controller: DispatchController | undefined;
  private retried = false;
  private done: ((outcome: RunnerOutcome) => void) | undefined;
  private headers: Record<string, string> | undefined;
  /** What goes to the backend: the server's body, with `model` rewritten for a renamed model. */
  private body: string;
  // Per attempt:
  private status = 0;
  private outHeaders: Record<string, string> | undefined;
  private parts: Buffer[] = [];
  private size = 0;
  /** Only a stream needs the decoder, splitter and event scanning: made when one starts. */
  private stream: { decoder: TextDecoder; splitter: SseSplitter; usage: UsageCollector } | undefined;

  /** `backendModel`: the backend's name for the public name asked for, when they differ. */
  constructor(
    private readonly req: Request,
    private readonly opts: RunnerOptions,
    private readonly backendModel?: string,
  ) {
    this.id = req.request_id;
    this.body = req.body;
  }

  /** `acknowledge`: answer the server's cancel (cancel-ack); a worker that is stopping sends
   * nothing, and its closing link tells the server the request was lost. */
  cancel(acknowledge = true): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.silent = !acknowledge;
    this.controller?.abort(new Error('cancelled'));
  }

  /** The server let `bytes` more through to the client. */
  credit(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes);
    const c = this.controller;
    if (c?.paused && this.opts.flowWindow !== undefined && this.unacked < this.opts.flowWindow) c.resume();
  }

  /** Forwards the request; `done` runs once the answer (or the failure) has been sent to the server. */
  run(done: (outcome: RunnerOutcome) => void): void {
    const { req, opts } = this;
    const headers = forwardableHeaders(req.headers, DROP_TO_BACKEND);
    headers['accept-encoding'] = 'identity';
    headers['content-type'] ??= 'application/json';
    if (opts.backendApiKey) headers['authorization'] = `Bearer ${opts.backendApiKey}`;
    this.headers = headers;
    this.done = done;
    // One scan to the body's top-level `model` and one copy; a body with none (not JSON, say) goes
    // as it came, and the backend answers it as it would.
    if (this.backendModel !== undefined) this.body = rewriteModel(req.body, this.backendModel) ?? req.body;
    this.attempt();
  }

  private attempt(): void {
    this.status = 0;
    this.outHeaders = undefined;
    this.parts = [];
    this.size = 0;
    this.stream = undefined;
    this.opts.backend.dispatch({ path: this.req.endpoint_path, headers: this.headers!, body: this.body }, this);
  }

  private finish(outcome: RunnerOutcome): void {
    const done = this.done;
    this.done = undefined;
    done?.(outcome);
  }

  // ---------- undici dispatch handler ----------

  onRequestStart(c: DispatchController): void {
    this.controller = c;
    if (this.cancelled) c.abort(new Error('cancelled'));
  }

  onResponseStart(_c: DispatchController, statusCode: number, h: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    if (statusCode !== 503) this.opts.backendAnswered();
    if (this.req.is_streaming && statusCode < 300) this.stream = { decoder: new TextDecoder('utf-8'), splitter: new SseSplitter(), usage: new UsageCollector() };
    else this.outHeaders = forwardableHeaders(h, DROP_FROM_BACKEND);
  }

  onResponseData(c: DispatchController, chunk: Buffer): void {
    if (this.cancelled) return;
    const { stream, opts } = this;
    if (stream) {
      this.sendEvents(stream.splitter.push(stream.decoder.decode(chunk, { stream: true })), c);
      // A backend that never ends its events would make us buffer forever: cap it.
      if (stream.splitter.buffered > opts.maxBodyBytes) c.abort(new Error('the backend sent an SSE event larger than the frame limit'));
      return;
    }
    this.size += chunk.length;
    if (this.size > opts.maxBodyBytes) c.abort(new Error(`the backend's answer exceeds the relay's frame limit of ${opts.maxBodyBytes} bytes`));
    else this.parts.push(chunk);
  }

  onResponseEnd(c: DispatchController): void {
    if (this.cancelled) return this.finish(this.acknowledgeCancel());
    const { stream, parts } = this;
    if (stream) {
      this.sendEvents(stream.splitter.push(stream.decoder.decode()) + stream.splitter.flush(), c);
      this.complete(this.status, undefined, undefined, stream.usage.result());
    } else {
      // Kept as bytes: with binary-frames they go out as they came (an embeddings answer can be MBs).
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.size);
      // llama-server answers 503 "Loading model" until its model is in memory: not an answer.
      if (this.status === 503 && isLoading(bytes)) {
        this.unavailable('the backend is loading its model (503)', true, () => this.complete(503, bytes, this.outHeaders, undefined));
        return this.finish('failed');
      }
      if (this.status === 503) this.opts.backendAnswered();
      this.complete(this.status, bytes, this.outHeaders, UsageCollector.fromBytes(bytes));
    }
    this.finish('completed');
  }

  onResponseError(_c: DispatchController, err: Error): void {
    if (this.cancelled) return this.finish(this.acknowledgeCancel());
    // A keep-alive connection the backend closed just as we reused it fails before any answer
    // (llama-server does this now and then): one retry, never after a byte.
    if (this.status === 0 && !this.retried && isStaleConnection(err)) {
      this.retried = true;
      return this.attempt();
    }
    // Nothing of the answer sent on (refused or not found means the backend is down; a reset, even
    // after its status line or part of a body we hold, may be one bad moment, or a crash): the
    // client has seen nothing, so it is no answer: try another worker.
    const code = errorCode(err);
    if (!this.forwarded && code !== undefined && (DOWN.has(code) || STALE.has(code))) {
      this.unavailable(describeFailure(err, this.opts.backend.origin), DOWN.has(code), () => this.fail(err));
    } else this.fail(err);
    this.finish('failed');
  }

  /** The backend could not take the request: note it, then let the server re-route it (or answer
   * `fallback`, today's error answer, to a server that can't). */
  private unavailable(reason: string, down: boolean, fallback: () => void): void {
    if (down) this.opts.backendDown(reason);
    if (!this.opts.retryElsewhere) return fallback();
    this.opts.send({ type: 'error', request_id: this.id, code: RequestErrorCode.backendUnavailable, message: capitalise(reason) + '.' });
  }

  private sendEvents(events: string, c: DispatchController): void {
    if (!events) return;
    this.forwarded = true;
    this.stream!.usage.fromEvents(events);
    this.opts.send({ type: 'response_chunk', request_id: this.id, chunk: events });
    const window = this.opts.flowWindow;
    if (window !== undefined) {
      this.unacked += Buffer.byteLength(events);
      if (this.unacked >= window) c.pause();
    }
  }

  private complete(status: number, body: Buffer | undefined, headers: Record<string, string> | undefined, tokens: TokenCounts | undefined): void {
    if (this.cancelled) return;
    // Undefined fields vanish from the frame (JSON.stringify), so no spreads are needed. A body goes
    // as bytes beside the message; `send` puts it in the frame.
    const msg = { type: 'response_complete', request_id: this.id, status_code: status, headers, token_counts: tokens } as const;
    if (body) this.opts.send({ ...msg, body: '' }, body);
    else this.opts.send(msg);
  }

  private acknowledgeCancel(): RunnerOutcome {
    if (this.opts.cancelAck && !this.silent) this.opts.send({ type: 'response_complete', request_id: this.id, status_code: 499 });
    return 'cancelled';
  }

  private fail(err: Error): void {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = (err as { code?: string }).code ?? cause?.code;
    const unreachable = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT';
    const message = unreachable
      ? `The backend at ${this.opts.backend.origin} is unreachable (${code}).`
      : `The backend call failed: ${err.message.replace(/\.+$/, '')}${code ? ` (${code})` : ''}.`;
    const anthropic = this.req.endpoint_path.startsWith('/v1/messages');
    const body = anthropic
      ? JSON.stringify({ type: 'error', error: { type: 'api_error', message } })
      : JSON.stringify({ error: { message, type: 'server_error', code: unreachable ? 'backend_unreachable' : 'backend_error' } });
    this.complete(502, Buffer.from(body), { 'content-type': 'application/json' }, undefined);
  }
}

/** The backend is not there: nothing listens, the name or route is gone, the connect timed out. */
const DOWN = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
/** The connection broke before any answer. */
const STALE = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

function errorCode(err: unknown): string | undefined {
  return (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
}

function isLoading(body: Buffer): boolean {
  return body.length < 4096 && /loading/i.test(body.toString('utf8'));
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function isStaleConnection(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && STALE.has(code);
}
