// Composition root of the server: HTTP API + worker gateway + relay, on one node:http listener.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Scheduler } from '../core/index.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { DEFAULT_SERVER_CONFIG, type ServerConfig } from './config.js';
import { createHttpHandler } from './http-api.js';
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
  const relay = new Relay({ scheduler: new Scheduler(config.scheduler), log, drainTimeoutMs: config.drainTimeoutMs });
  const http = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true }, createHttpHandler({ relay, maxBodyBytes: config.maxBodyBytes, version: VERSION, startedAt }));
  const gateway = new WorkerGateway({
    secret: config.workerSecret,
    maxFrameBytes: config.maxFrameBytes,
    trustProxy: config.trustProxy,
    authFailuresPerMinute: config.authFailuresPerMinute,
    log,
    onConnection: (ws, peer) => new WorkerSession(ws, peer, relay, log, config.registerTimeoutMs),
  });
  http.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  http.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
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
