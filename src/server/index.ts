// Composition root of the server: HTTP API + worker gateway + relay, on one node:http listener.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RelayError, Scheduler } from '../core/index.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { DEFAULT_SERVER_CONFIG, type ServerConfig } from './config.js';
import { LogLimiter } from '../log-limiter.js';
import { BodyBudget } from './body-budget.js';
import { capConnectionsPerAddress } from './connection-cap.js';
import { createHttpHandler } from './http-api.js';
import { errorBody } from './render-error.js';
import { Relay } from './relay.js';
import { WorkerGateway } from './worker-gateway.js';
import { WorkerSession } from './worker-session.js';

export { DEFAULT_SERVER_CONFIG, type ServerConfig } from './config.js';

export interface RunningServer {
  url: string;
  port: number;
  relay: Relay;
  http: Server;
  /** Stop intake, let in-flight work finish within the drain timeout, then close. */
  shutdown(): Promise<void>;
  /** Close now, failing whatever is in flight. */
  destroy(): Promise<void>;
}

export async function startServer(cfg: Partial<ServerConfig> & { workerSecret: string }, log: Logger): Promise<RunningServer> {
  const config: ServerConfig = { ...DEFAULT_SERVER_CONFIG, ...cfg };
  const startedAt = Date.now();
  const relay = new Relay({ scheduler: new Scheduler(config.scheduler), log, drainTimeoutMs: config.drainTimeoutMs, queueKeepaliveMs: config.queueKeepaliveMs });
  const connectionLog = new LogLimiter(log);
  const proxies = { trust: config.trustProxy, hops: config.trustedProxyHops };
  const http = createServer(
    {
      keepAliveTimeout: 65_000,
      // Slow senders: headers within the header timeout; the whole request within both timeouts
      // (a backstop for the body deadline the API enforces itself, in the route's error shape).
      headersTimeout: config.headerTimeoutMs,
      requestTimeout: config.bodyTimeoutMs > 0 ? config.headerTimeoutMs + config.bodyTimeoutMs + 1000 : 0,
      connectionsCheckingInterval: Math.min(1000, config.headerTimeoutMs),
      noDelay: true,
    },
    createHttpHandler({
      relay,
      maxBodyBytes: config.maxBodyBytes,
      bodyTimeoutMs: config.bodyTimeoutMs,
      budget: new BodyBudget(config.maxBufferedBytes),
      proxies,
      version: VERSION,
      startedAt,
    }),
  );
  capConnectionsPerAddress(http, config.maxConnectionsPerIp, (addr) => connectionLog.warn(addr, { peer: addr, max: config.maxConnectionsPerIp }, 'connection refused: too many open connections from one address'));
  const gateway = new WorkerGateway({
    secret: config.workerSecret,
    maxFrameBytes: config.maxFrameBytes,
    proxies,
    authFailuresPerMinute: config.authFailuresPerMinute,
    log,
    onConnection: (ws, peer) => new WorkerSession(ws, peer, relay, log, { registerTimeoutMs: config.registerTimeoutMs, maxConcurrent: config.maxWorkerConcurrency }),
  });
  http.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return;
    // Before a request exists there is no route, hence no shape to choose: the OpenAI one.
    const [status, text, e] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', new RelayError('header_timeout', `The request did not arrive within ${config.headerTimeoutMs / 1000}s.`)]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', new RelayError('invalid_request', 'The request headers are too large.')]
          : [400, 'Bad Request', new RelayError('invalid_request', 'The request is not valid HTTP/1.1.')];
    const body = errorBody('openai', e);
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, config.host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;

  const closeHttp = async (): Promise<void> => {
    gateway.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  };
  return {
    url,
    port,
    relay,
    http,
    async shutdown() {
      await relay.shutdown(config.drainTimeoutMs);
      await closeHttp();
    },
    async destroy() {
      relay.destroy();
      await closeHttp();
    },
  };
}
