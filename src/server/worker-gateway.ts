// The door for workers: authenticates the HTTP upgrade on /v1/worker/connect before any socket opens
// (the shared secret or a worker token, through auth), rate-limits failed attempts per peer address,
// and hands accepted sockets to the relay. A correct credential is never refused: only failures
// count, and only failures are rate-limited, so a guesser can't lock the real worker out by failing
// from its address.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WORKER_CONNECT_PATH } from '../protocol/index.js';
import type { Logger } from '../log.js';
import { LogLimiter } from '../log-limiter.js';
import type { WorkerCredential } from '../auth/index.js';
import { clientAddress, type TrustedProxies } from './client-address.js';

export interface GatewayOptions {
  /** What the presented secret is: the shared secret, a worker token, or nothing valid. */
  authenticate(given: string): WorkerCredential | undefined;
  /** Counts a refused credential (the gateway logs it, rate-limited per peer). */
  onAuthFailure(): void;
  maxFrameBytes: number;
  proxies: TrustedProxies;
  authFailuresPerMinute: number;
  log: Logger;
  /** Why an authenticated worker can't be taken now (worker caps), or undefined. */
  refusal?(): string | undefined;
  onConnection(ws: WebSocket, peer: string, provider: string, credential: WorkerCredential): void;
}

const WINDOW_MS = 60_000;

export class WorkerGateway {
  private readonly wss: WebSocketServer;
  private readonly failures = new Map<string, { count: number; windowStart: number }>();
  private readonly logLimiter: LogLimiter;

  constructor(private readonly opts: GatewayOptions) {
    this.logLimiter = new LogLimiter(opts.log);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxFrameBytes, perMessageDeflate: false });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== WORKER_CONNECT_PATH) return reject(socket, 404, 'Not Found');
    const peer = clientAddress(req, this.opts.proxies);
    // The header wins; the query parameter is for legacy peers only.
    const header = req.headers['x-worker-secret'];
    const given = typeof header === 'string' ? header : header === undefined ? url.searchParams.get('worker_secret') : null;
    const credential = given === null || given === '' ? undefined : this.opts.authenticate(given);
    if (credential === undefined) {
      const now = Date.now();
      const record = this.noteFailure(peer, now);
      this.opts.onAuthFailure();
      if (record.count > this.opts.authFailuresPerMinute) {
        this.logLimiter.warn(`limited ${peer}`, { peer }, 'worker authentication rate limited');
        return reject(socket, 429, 'Too Many Requests', { 'retry-after': String(Math.max(1, Math.ceil((record.windowStart + WINDOW_MS - now) / 1000))) });
      }
      this.logLimiter.warn(`failed ${peer}`, { peer, reason: given ? 'wrong secret' : 'missing secret' }, 'worker authentication failed');
      return reject(socket, 401, 'Unauthorized');
    }
    const full = this.opts.refusal?.();
    if (full !== undefined) {
      this.logLimiter.warn('full', { peer, reason: full }, 'worker connection refused');
      return reject(socket, 503, 'Service Unavailable', { 'retry-after': '1' }, `The worker connection was refused: ${full}; retry shortly.`);
    }
    const provider = (url.searchParams.get('provider') ?? 'local').slice(0, 64);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opts.onConnection(ws, peer, provider, credential));
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

function reject(socket: Duplex, status: number, text: string, extra: Record<string, string> = {}, message = text): void {
  const code: string = status === 401 ? 'invalid_worker_secret' : status === 503 ? 'too_many_workers' : status === 429 ? 'auth_rate_limited' : 'route_not_found';
  const body = JSON.stringify({ error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', code } });
  const headers = Object.entries({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...extra })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${headers}\r\n${body}`);
}
