// Everything the server can be told, with the defaults the CLI documents.
import type { RoutingConfig, SchedulerConfig } from '../core/index.js';
import type { TlsFiles } from './tls-front.js';

/** Longest model name a worker may register or a client may ask for. */
export const MAX_MODEL_NAME = 256;

export interface ServerConfig {
  host: string;
  /** 0 = pick a free port (the bound URL is logged and returned). */
  port: number;
  /** The shared secret workers present; may be empty when an admin token issues worker tokens. */
  workerSecret: string;
  /** Enables the admin API (and the store); undefined = admin API refused. */
  adminToken: string | undefined;
  /** Inference routes and GET /v1/models need a client key. */
  requireApiKeys: boolean;
  /** Where the store lives; undefined = the user's data directory (opened only when needed). */
  dataDir: string | undefined;
  /** /metrics stays open even with an admin token set. */
  metricsPublic: boolean;
  /** Comma-separated origins (or '*') browsers may call the API from; empty = no CORS headers. */
  corsOrigins: string;
  maxBodyBytes: number;
  maxFrameBytes: number;
  scheduler: Partial<SchedulerConfig>;
  /** --routing and its bounds (core/routing.ts). */
  routing: Partial<RoutingConfig>;
  /** `NAME=TARGET[|TARGET…]` entries (core/model-aliases.ts); checked at start. */
  modelAliases: string[];
  /** How long in-flight work may take to finish on SIGTERM, or when a worker is told to drain. */
  drainTimeoutMs: number;
  /** Honour X-Forwarded-For for the peer address (only behind a proxy you run). */
  trustProxy: boolean;
  /** With trustProxy: how many proxies of yours append to X-Forwarded-For (counted from the right). */
  trustedProxyHops: number;
  /** A client must send a request's headers within this long (node:http headersTimeout). */
  headerTimeoutMs: number;
  /** ...and its body within this long after the headers; beyond it 408. */
  bodyTimeoutMs: number;
  /** Request body bytes held at once (being read, queued or in flight); beyond it 503. 0 = no cap. */
  maxBufferedBytes: number;
  /** Open TCP connections one peer address may hold (clients and workers alike). 0 = no cap. */
  maxConnectionsPerIp: number;
  /** Open TCP connections in all (clients and workers alike). 0 = no cap. */
  maxConnections: number;
  /** Largest request line plus headers a client may send; beyond it 431 (node:http maxHeaderSize). */
  maxHeaderBytes: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Worker connections at once, registered or not; beyond it the upgrade gets 503. */
  maxWorkers: number;
  /** Worker connections that upgraded but have not registered yet; beyond it the upgrade gets 503. */
  maxPendingWorkers: number;
  /** The most concurrent requests one worker's registration may claim. */
  maxWorkerConcurrency: number;
  /** Queued streams get SSE keep-alive comments this often (0 = off). */
  queueKeepaliveMs: number;
  /** A worker must send `register` within this long after connecting. */
  registerTimeoutMs: number;
  /** Failed worker authentications allowed per peer address per minute. */
  authFailuresPerMinute: number;
  /** Serve HTTPS and WSS with this certificate and key; undefined = plain HTTP. */
  tls: TlsFiles | undefined;
}

export const DEFAULT_SERVER_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  workerSecret: '',
  adminToken: undefined,
  requireApiKeys: false,
  dataDir: undefined,
  metricsPublic: false,
  corsOrigins: '',
  maxBodyBytes: 32 * 1024 * 1024,
  maxFrameBytes: 64 * 1024 * 1024,
  scheduler: {},
  routing: {},
  modelAliases: [],
  drainTimeoutMs: 30_000,
  trustProxy: false,
  trustedProxyHops: 1,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 60_000,
  maxBufferedBytes: 256 * 1024 * 1024,
  maxConnectionsPerIp: 256,
  maxConnections: 8192,
  maxHeaderBytes: 16 * 1024,
  keepAliveTimeoutMs: 65_000,
  maxWorkers: 1024,
  maxPendingWorkers: 64,
  maxWorkerConcurrency: 256,
  queueKeepaliveMs: 0,
  registerTimeoutMs: 5_000,
  authFailuresPerMinute: 10,
  tls: undefined,
};
