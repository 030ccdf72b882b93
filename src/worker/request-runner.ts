// Runs one relayed request against the backend: forwards it, streams the answer back as whole SSE
// events, reports usage, and stops the backend call the moment it is cancelled.
// With flow-control, it stops reading the backend once `window` bytes are unacknowledged.
import type { Dispatcher } from 'undici';
import { forwardableHeaders, type MessageOf, type ServerMessage, type TokenCounts, type WorkerMessage } from '../protocol/index.js';
import type { BackendClient } from './backend-client.js';
import { SseSplitter } from './sse-splitter.js';
import { UsageCollector } from './usage.js';

type Request = MessageOf<ServerMessage, 'request'>;
type DispatchController = Dispatcher.DispatchController;

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
  private cancelled = false;
  private unacked = 0;
  private controller: DispatchController | undefined;

  constructor(
    private readonly req: Request,
    private readonly opts: RunnerOptions,
  ) {
    this.id = req.request_id;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort(new Error('cancelled'));
  }

  /** The server let `bytes` more through to the client. */
  credit(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes);
    const c = this.controller;
    if (c?.paused && this.opts.flowWindow !== undefined && this.unacked < this.opts.flowWindow) c.resume();
  }

  /** Forwards the request; resolves once the answer (or the failure) has been sent to the server. */
  run(): Promise<RunnerOutcome> {
    const { req, opts } = this;
    const headers = forwardableHeaders(req.headers, DROP_TO_BACKEND);
    headers['accept-encoding'] = 'identity';
    headers['content-type'] ??= 'application/json';
    if (opts.backendApiKey) headers['authorization'] = `Bearer ${opts.backendApiKey}`;
    return new Promise((resolve) => {
      let retried = false;
      // undici's dispatch API: callbacks instead of a Readable and an AbortSignal per call. This is
      // the worker's hottest path, so the lighter machinery is worth it.
      const attempt = (): void => {
        let status = 0;
        let outHeaders: Record<string, string> | undefined;
        const parts: Buffer[] = [];
        let size = 0;
        // Only a stream needs the decoder, splitter and event scanning: made when one starts.
        let stream: { decoder: TextDecoder; splitter: SseSplitter; usage: UsageCollector } | undefined;
        const window = opts.flowWindow;
        const sendEvents = (events: string, usage: UsageCollector, c: DispatchController): void => {
          if (!events) return;
          usage.fromEvents(events);
          opts.send({ type: 'response_chunk', request_id: this.id, chunk: events });
          if (window !== undefined) {
            this.unacked += Buffer.byteLength(events);
            if (this.unacked >= window) c.pause();
          }
        };
        opts.backend.dispatch({ path: req.endpoint_path, headers, body: req.body }, {
          onRequestStart: (c) => {
            this.controller = c;
            if (this.cancelled) c.abort(new Error('cancelled'));
          },
          onResponseStart: (_c, statusCode, h) => {
            status = statusCode;
            if (req.is_streaming && statusCode < 300) stream = { decoder: new TextDecoder('utf-8'), splitter: new SseSplitter(), usage: new UsageCollector() };
            else outHeaders = forwardableHeaders(h as Record<string, string | string[]>, DROP_FROM_BACKEND);
          },
          onResponseData: (c, chunk) => {
            if (this.cancelled) return;
            if (stream) {
              sendEvents(stream.splitter.push(stream.decoder.decode(chunk, { stream: true })), stream.usage, c);
              // A backend that never ends its events would make us buffer forever: cap it.
              if (stream.splitter.buffered > opts.maxBodyBytes) c.abort(new Error('the backend sent an SSE event larger than the frame limit'));
              return;
            }
            size += chunk.length;
            if (size > opts.maxBodyBytes) c.abort(new Error(`the backend's answer exceeds the relay's frame limit of ${opts.maxBodyBytes} bytes`));
            else parts.push(chunk);
          },
          onResponseEnd: (c) => {
            if (this.cancelled) return resolve(this.acknowledgeCancel());
            if (stream) {
              sendEvents(stream.splitter.push(stream.decoder.decode()) + stream.splitter.flush(), stream.usage, c);
              this.complete(status, undefined, undefined, stream.usage.result());
            } else {
              const body = (parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)).toString('utf8');
              this.complete(status, body, outHeaders, UsageCollector.fromBody(body));
            }
            resolve('completed');
          },
          onResponseError: (_c, err) => {
            if (this.cancelled) return resolve(this.acknowledgeCancel());
            // A keep-alive connection the backend closed just as we reused it fails before any
            // answer (llama-server does this now and then): one retry, never after a byte.
            if (status === 0 && !retried && isStaleConnection(err)) {
              retried = true;
              return attempt();
            }
            this.fail(err);
            resolve('failed');
          },
        });
      };
      attempt();
    });
  }

  private complete(status: number, body: string | undefined, headers: Record<string, string> | undefined, tokens: TokenCounts | undefined): void {
    if (this.cancelled) return;
    // Undefined fields vanish from the frame (JSON.stringify), so no spreads are needed.
    this.opts.send({ type: 'response_complete', request_id: this.id, status_code: status, headers, body, token_counts: tokens });
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
      : `The backend call failed: ${err.message.replace(/\.+$/, '')}${code ? ` (${code})` : ''}.`;
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
