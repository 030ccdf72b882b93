// Runs one relayed request against the backend: forwards it, streams the answer back as whole SSE
// events, reports usage, and stops the backend call the moment it is cancelled.
// With flow-control, it stops reading the backend once `window` bytes are unacknowledged.
import type { Readable } from 'node:stream';
import { forwardableHeaders, type MessageOf, type ServerMessage, type TokenCounts, type WorkerMessage } from '../protocol/index.js';
import type { BackendClient } from './backend-client.js';
import { SseSplitter } from './sse-splitter.js';
import { UsageCollector } from './usage.js';

type Request = MessageOf<ServerMessage, 'request'>;

export interface RunnerOptions {
  backend: BackendClient;
  send(msg: WorkerMessage): void;
  backendApiKey?: string;
  /** Largest body a single frame may carry. */
  maxBodyBytes: number;
  /** flow-control window in bytes, or undefined when the server doesn't speak it. */
  flowWindow?: number;
  /** Reply to a cancel with response_complete 499 (cancel-ack). */
  cancelAck: boolean;
}

export type RunnerOutcome = 'completed' | 'cancelled' | 'failed';

// Client headers that must not reach the backend: we want an uncompressed body to relay as text.
const DROP_TO_BACKEND = new Set(['accept-encoding', 'x-worker-secret']);
const DROP_FROM_BACKEND = new Set(['content-encoding', 'date', 'server']);

export class RequestRunner {
  readonly id: string;
  private readonly ac = new AbortController();
  private cancelled = false;
  private unacked = 0;
  private body: Readable | undefined;

  constructor(
    private readonly req: Request,
    private readonly opts: RunnerOptions,
  ) {
    this.id = req.request_id;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.ac.abort();
  }

  /** The server let `bytes` more through to the client. */
  credit(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes);
    if (this.body?.isPaused() && this.opts.flowWindow !== undefined && this.unacked < this.opts.flowWindow) this.body.resume();
  }

  async run(): Promise<RunnerOutcome> {
    try {
      return await this.forward();
    } catch (err) {
      if (this.cancelled) return this.acknowledgeCancel();
      this.fail(err as Error);
      return 'failed';
    }
  }

  private async forward(): Promise<RunnerOutcome> {
    const { req, opts } = this;
    const headers = forwardableHeaders(req.headers, DROP_TO_BACKEND);
    headers['accept-encoding'] = 'identity';
    headers['content-type'] ??= 'application/json';
    if (opts.backendApiKey) headers['authorization'] = `Bearer ${opts.backendApiKey}`;
    const call = { path: req.endpoint_path, headers, body: req.body, signal: this.ac.signal };
    let res: Awaited<ReturnType<BackendClient['post']>>;
    try {
      res = await opts.backend.post(call);
    } catch (err) {
      // A keep-alive connection the backend closed just as we reused it fails before any answer
      // (llama-server does this now and then): one retry on a fresh connection, never after a byte.
      if (this.cancelled || !isStaleConnection(err)) throw err;
      res = await opts.backend.post(call);
    }
    const outHeaders = forwardableHeaders(res.headers as Record<string, string | string[]>, DROP_FROM_BACKEND);
    if (!req.is_streaming || res.statusCode >= 300) {
      const body = await readText(res.body, opts.maxBodyBytes);
      const usage = new UsageCollector();
      usage.fromBody(body);
      this.complete(res.statusCode, body, outHeaders, usage.result());
      return 'completed';
    }
    return this.stream(res.body, res.statusCode);
  }

  /** Forwards whole SSE events as they arrive; nothing is held back waiting for more. */
  private stream(body: Readable, status: number): Promise<RunnerOutcome> {
    const decoder = new TextDecoder('utf-8');
    const splitter = new SseSplitter();
    const usage = new UsageCollector();
    const window = this.opts.flowWindow;
    this.body = body;
    const sendEvents = (events: string): void => {
      if (!events) return;
      usage.fromEvents(events);
      this.opts.send({ type: 'response_chunk', request_id: this.id, chunk: events });
      if (window !== undefined) {
        this.unacked += Buffer.byteLength(events);
        if (this.unacked >= window) body.pause();
      }
    };
    return new Promise<RunnerOutcome>((resolve, reject) => {
      body.on('data', (buf: Buffer) => {
        if (this.cancelled) return;
        sendEvents(splitter.push(decoder.decode(buf, { stream: true })));
        // A backend that never ends events would make us buffer forever: cap it.
        if (splitter.buffered > this.opts.maxBodyBytes) body.destroy(new Error('backend sent an SSE event larger than the frame limit'));
      });
      body.once('error', reject);
      body.once('end', () => {
        if (this.cancelled) return resolve(this.acknowledgeCancel());
        sendEvents(splitter.push(decoder.decode()) + splitter.flush());
        this.complete(status, undefined, undefined, usage.result());
        resolve('completed');
      });
    });
  }

  private complete(status: number, body: string | undefined, headers: Record<string, string> | undefined, tokens: TokenCounts | undefined): void {
    if (this.cancelled) return;
    this.opts.send({
      type: 'response_complete',
      request_id: this.id,
      status_code: status,
      ...(headers ? { headers } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(tokens ? { token_counts: tokens } : {}),
    });
  }

  private acknowledgeCancel(): RunnerOutcome {
    if (this.opts.cancelAck) this.opts.send({ type: 'response_complete', request_id: this.id, status_code: 499 });
    return 'cancelled';
  }

  private fail(err: Error): void {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = (err as { code?: string }).code ?? cause?.code;
    const unreachable = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT';
    const message = unreachable
      ? `The backend at ${this.opts.backend.origin} is unreachable (${code}).`
      : `The backend call failed: ${err.message}${code ? ` (${code})` : ''}.`;
    const anthropic = this.req.endpoint_path.startsWith('/v1/messages');
    const body = anthropic
      ? JSON.stringify({ type: 'error', error: { type: 'api_error', message } })
      : JSON.stringify({ error: { message, type: 'server_error', code: unreachable ? 'backend_unreachable' : 'backend_error' } });
    this.complete(502, body, { 'content-type': 'application/json' }, undefined);
  }
}

function isStaleConnection(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

function readText(body: Readable, maxBytes: number): Promise<string> {
  // 'data' events rather than an async iterator: this runs once per non-streaming request.
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        body.destroy(new Error(`the backend's answer exceeds the relay's frame limit of ${maxBytes} bytes`));
        return;
      }
      parts.push(chunk);
    });
    body.once('error', reject);
    body.once('end', () => resolve((parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)).toString('utf8')));
  });
}
