// Composition root of the server: HTTP API + worker gateway + relay on one node:http listener, with
// the store, authentication and telemetry they share.
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { Auth } from '../auth/index.js';
import { ModelAliases, Scheduler } from '../core/index.js';
import type { Logger } from '../log.js';
import { SqliteStore, UsageBatcher, defaultDataDir, type Store } from '../store/index.js';
import { Telemetry } from '../telemetry/index.js';
import { AdminApi } from './admin-api.js';
import { AdminGate } from './admin-gate.js';
import { ClientGate } from './client-gate.js';
import { Cors } from './cors.js';
import { DashboardAssets } from './dashboard-assets.js';
import { operatorRoutes } from './operator-routes.js';
import { VERSION } from '../version.js';
import { DEFAULT_SERVER_CONFIG, MAX_MODEL_NAME, type ServerConfig } from './config.js';
import { LogLimiter } from '../log-limiter.js';
import { BodyBudget } from './body-budget.js';
import { KeyLimits } from './key-limits.js';
import { capConnections } from './connection-cap.js';
import { createHttpHandler } from './http-api.js';
import { TlsFront, loadTlsPair } from './tls-front.js';
import { errorBody } from './render-error.js';
import { sendClientError } from './render-error.js';
import { Relay } from './relay.js';
import { WorkerAdmission } from './worker-admission.js';
import { WorkerGateway } from './worker-gateway.js';
import { WorkerSession } from './worker-session.js';

export { DEFAULT_SERVER_CONFIG, MAX_MODEL_NAME, type ServerConfig } from './config.js';

export interface RunningServer {
  url: string;
  port: number;
  relay: Relay;
  http: Server | HttpsServer;
  telemetry: Telemetry;
  /** Open when keys, tokens or an admin token are in use. */
  store: Store | undefined;
  /** Stop intake, let in-flight work finish within the drain timeout, then close. */
  shutdown(): Promise<void>;
  /** Close now, failing whatever is in flight. */
  destroy(): Promise<void>;
  /** Re-read the TLS certificate and key (SIGHUP); false if they did not load (or no TLS). */
  reloadTls(): boolean;
}

export async function startServer(cfg: Partial<ServerConfig>, log: Logger): Promise<RunningServer> {
  const config: ServerConfig = { ...DEFAULT_SERVER_CONFIG, ...cfg };
  if (!config.workerSecret && !config.adminToken) {
    throw new Error('set a worker secret (--worker-secret), or an admin token (--admin-token) to issue worker tokens with');
  }
  const startedAt = Date.now();
  // A certificate that can't be used stops the start, before anything else is opened.
  const tlsPair = config.tls ? loadTlsPair(config.tls) : undefined;
  // The store opens only when something needs it, and a store that can't be opened stops the start.
  const store = config.adminToken || config.requireApiKeys || config.dataDir !== undefined ? new SqliteStore(config.dataDir ?? defaultDataDir()) : undefined;
  if (store) log.info({ store: store.location }, 'store opened');
  if (config.requireApiKeys && !config.adminToken) log.warn('--require-api-keys without --admin-token: no key can be issued; only keys already in the store work');
  const auth = new Auth({ store, workerSecret: config.workerSecret || undefined, adminToken: config.adminToken });
  const scheduler = new Scheduler(config.scheduler, ModelAliases.parse(config.modelAliases, MAX_MODEL_NAME), config.routing);
  const telemetry = new Telemetry(log, { queueDepths: () => scheduler.queueDepthByModel(), workers: () => scheduler.workerList(), routing: () => scheduler.router });
  const usage = store ? new UsageBatcher(store, (err) => log.error({ err: err.message, store: store.location }, 'could not write usage; will retry')) : undefined;
  telemetry.usage = usage;
  const keyLimits = config.requireApiKeys ? new KeyLimits() : undefined;
  telemetry.keyTokens = keyLimits ? (keyId, tokens) => keyLimits.noteTokens(keyId, tokens) : undefined;
  const relay = new Relay({ scheduler, log, drainTimeoutMs: config.drainTimeoutMs, queueKeepaliveMs: config.queueKeepaliveMs, telemetry, credentialValid: (s) => auth.stillValid(s.info.credential) });
  auth.clientKeys?.onRevoke((id) => relay.endForKey(id));
  auth.workerTokens?.onRevoke((id) => {
    const n = relay.disconnectToken(id);
    log.info({ token_id: id, workers_disconnected: n }, 'worker token revoked');
  });
  const connectionLog = new LogLimiter(log);
  const proxies = { trust: config.trustProxy, hops: config.trustedProxyHops };
  const gate = new AdminGate(auth.admin, telemetry, proxies, config.authFailuresPerMinute);
  const admin = new AdminApi({ gate, relay, auth, telemetry, usage: () => usage?.totals() ?? new Map(), keyLimits });
  const httpOptions = {
    keepAliveTimeout: config.keepAliveTimeoutMs,
    maxHeaderSize: config.maxHeaderBytes,
    // Slow senders: headers within the header timeout; the whole request within both timeouts
    // (a backstop for the body deadline the API enforces itself, in the route's error shape).
    headersTimeout: config.headerTimeoutMs,
    requestTimeout: config.bodyTimeoutMs > 0 ? config.headerTimeoutMs + config.bodyTimeoutMs + 1000 : 0,
    connectionsCheckingInterval: Math.min(1000, config.headerTimeoutMs),
    noDelay: true,
  };
  const handler = createHttpHandler({
    relay,
    maxBodyBytes: config.maxBodyBytes,
    bodyTimeoutMs: config.bodyTimeoutMs,
    budget: new BodyBudget(config.maxBufferedBytes),
    proxies,
    version: VERSION,
    startedAt,
    telemetry,
    cacheAware: scheduler.router.active,
    clientGate: config.requireApiKeys ? new ClientGate(auth, telemetry, proxies) : undefined,
    keyLimits,
    cors: Cors.parse(config.corsOrigins),
    operatorRoutes: operatorRoutes({ admin, gate, telemetry, metricsPublic: config.metricsPublic, dashboard: new DashboardAssets() }),
  });
  const tls = config.tls && tlsPair ? new TlsFront(config.tls, log, tlsPair) : undefined;
  const http: Server | HttpsServer = tls
    ? createHttpsServer({ ...httpOptions, cert: tlsPair!.cert, key: tlsPair!.key, handshakeTimeout: config.headerTimeoutMs }, handler)
    : createServer(httpOptions, handler);
  // With TLS the port is a front listener that hands TLS connections to the HTTPS server.
  const listener: NetServer = tls ? tls.front(http as HttpsServer, config.headerTimeoutMs) : http;
  capConnections(listener, { total: config.maxConnections, perAddress: config.maxConnectionsPerIp }, (reason, addr) =>
    reason === 'total'
      ? connectionLog.warn('total', { peer: addr, max: config.maxConnections }, 'connection refused: the server holds --max-connections connections')
      : connectionLog.warn(addr, { peer: addr, max: config.maxConnectionsPerIp }, 'connection refused: too many open connections from one address'),
  );
  const admission = new WorkerAdmission({ maxWorkers: config.maxWorkers, maxPending: config.maxPendingWorkers });
  const gateway = new WorkerGateway({
    authenticate: (given) => auth.worker(given),
    onAuthFailure: () => telemetry.authFailure('worker'),
    maxFrameBytes: config.maxFrameBytes,
    proxies,
    authFailuresPerMinute: config.authFailuresPerMinute,
    log,
    refusal: () => admission.refusal(),
    onConnection: (ws, peer, provider, credential) =>
      admission.track(ws, new WorkerSession(ws, { peer, provider, credential }, relay, log, { registerTimeoutMs: config.registerTimeoutMs, maxConcurrent: config.maxWorkerConcurrency })),
  });
  http.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
  http.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
    if (socket.writable) sendClientError(socket, err, config.headerTimeoutMs);
  });

  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(config.port, config.host, () => resolve());
  });
  tls?.watch();
  const port = (listener.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;

  const closeHttp = async (): Promise<void> => {
    gateway.close();
    http.closeAllConnections();
    tls?.stop();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    usage?.close();
    store?.close();
  };
  return {
    url,
    port,
    relay,
    http,
    telemetry,
    store,
    async shutdown() {
      await relay.shutdown(config.drainTimeoutMs);
      await closeHttp();
    },
    async destroy() {
      relay.destroy();
      await closeHttp();
    },
    reloadTls: () => tls?.reload('SIGHUP') ?? false,
  };
}
