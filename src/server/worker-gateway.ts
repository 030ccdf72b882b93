// The door for workers: authenticates the HTTP upgrade on /v1/worker/connect before any socket opens,
// rate-limits failed attempts per peer address, and hands accepted sockets to the relay. A correct
// secret is never refused: only failures count, and only failures are rate-limited, so a guesser
// can't lock the real worker out by failing from its address.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WORKER_CONNECT_PATH } from '../protocol/index.js';
import type { Logger } from '../log.js';
import { LogLimiter } from '../log-limiter.js';
import { clientAddress, type TrustedProxies } from './client-address.js';

export interface GatewayOptions {
  secret: string;
  maxFrameBytes: number;
  proxies: TrustedProxies;
  authFailuresPerMinute: number;
  log: Logger;
  onConnection(ws: WebSocket, peer: string, provider: string): void;
}

const WINDOW_MS = 60_000;

export class WorkerGateway {
  private readonly wss: WebSocketServer;
  private readonly secretDigest: Buffer;
  private readonly failures = new Map<string, { count: number; windowStart: number }>();
  private readonly logLimiter: LogLimiter;

  constructor(private readonly opts: GatewayOptions) {
    if (!opts.secret) throw new Error('the worker secret must not be empty');
    this.logLimiter = new LogLimiter(opts.log);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxFrameBytes, perMessageDeflate: false });
    this.secretDigest = digest(opts.secret);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== WORKER_CONNECT_PATH) return reject(socket, 404, 'Not Found');
    const peer = clientAddress(req, this.opts.proxies);
    // The header wins; the query parameter is for legacy peers only.
    const header = req.headers['x-worker-secret'];
    const given = typeof header === 'string' ? header : header === undefined ? url.searchParams.get('worker_secret') : null;
    if (given === null || given === '' || !timingSafeEqual(digest(given), this.secretDigest)) {
      const now = Date.now();
      const record = this.noteFailure(peer, now);
      if (record.count > this.opts.authFailuresPerMinute) {
        this.logLimiter.warn(`limited ${peer}`, { peer }, 'worker authentication rate limited');
        return reject(socket, 429, 'Too Many Requests', { 'retry-after': String(Math.max(1, Math.ceil((record.windowStart + WINDOW_MS - now) / 1000))) });
      }
      this.logLimiter.warn(`failed ${peer}`, { peer, reason: given ? 'wrong secret' : 'missing secret' }, 'worker authentication failed');
      return reject(socket, 401, 'Unauthorized');
    }
    const provider = url.searchParams.get('provider') ?? 'local';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opts.onConnection(ws, peer, provider));
  }

  close(): void {
    this.wss.close();
  }

  /** Counts a failure in the peer's one-minute window; returns the window. */
  private noteFailure(peer: string, now: number): { count: number; windowStart: number } {
    let r = this.failures.get(peer);
    if (!r || now - r.windowStart >= WINDOW_MS) this.failures.set(peer, (r = { count: 1, windowStart: now }));
    else r.count++;
    // Bound the table: forget expired windows once it grows.
    if (this.failures.size > 10_000) {
      for (const [k, v] of this.failures) if (now - v.windowStart >= WINDOW_MS) this.failures.delete(k);
    }
    return r;
  }
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function reject(socket: Duplex, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { message: text, type: 'invalid_request_error', code: status === 401 ? 'invalid_worker_secret' : String(status) } });
  const headers = Object.entries({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...extra })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${headers}\r\n${body}`);
}
