// The server's flags: one table, read by the CLI, --help and the README check.
import type { FlagSpec } from './flags.js';
import { DEFAULT_SERVER_CONFIG as D } from '../server/config.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../core/index.js';

export const SERVER_FLAGS: FlagSpec[] = [
  { name: 'listen', env: 'LISTEN_ADDR', kind: 'string', default: '0.0.0.0:8080', help: 'Address for clients and workers (HOST:PORT; port 0 picks a free one).' },
  { name: 'tls-cert', env: 'TLS_CERT', kind: 'string', help: 'Serve HTTPS and WSS on --listen with this PEM certificate (chain); with --tls-key. Re-read on SIGHUP and when the file changes.' },
  { name: 'tls-key', env: 'TLS_KEY', kind: 'string', help: "The certificate's PEM private key; with --tls-cert." },
  { name: 'worker-secret', env: 'WORKER_SECRET', kind: 'string', help: 'Shared secret workers present in X-Worker-Secret; never empty, 16+ characters (prefer the env var or a file: flags show in ps). May be left out with --admin-token when workers use worker tokens.' },
  { name: 'worker-secret-file', env: 'WORKER_SECRET_FILE', kind: 'string', help: 'Read the worker secret from this file (one line) instead.' },
  { name: 'admin-token', env: 'ADMIN_TOKEN', kind: 'string', help: 'Enables the admin API and dashboard: callers send Authorization: Bearer <token> (at least 16 characters).' },
  { name: 'require-api-keys', env: 'REQUIRE_API_KEYS', kind: 'boolean', default: false, help: 'Inference routes and GET /v1/models need a client API key (Authorization: Bearer or x-api-key).' },
  { name: 'data-dir', env: 'DATA_DIR', kind: 'string', help: "Folder of the store (keys, worker tokens, usage); default: 'modelrelay' in the user's data directory." },
  { name: 'metrics-public', env: 'METRICS_PUBLIC', kind: 'boolean', default: false, help: 'Serve /metrics without the admin token even when one is set.' },
  { name: 'cors-origins', env: 'CORS_ORIGINS', kind: 'string', help: "Comma-separated origins (or '*') browsers may call the API routes from; unset = no CORS headers." },
  { name: 'model-alias', env: 'MODEL_ALIASES', kind: 'list', separator: ';', help: "NAME=TARGET[|TARGET…]: a request for NAME is served by any worker serving any TARGET, its body's model rewritten to the target chosen (repeatable)." },
  { name: 'max-queue-len', env: 'MAX_QUEUE_LEN', kind: 'number', default: 100, help: 'Requests that may wait for a free worker (0 = unlimited); beyond it 429.' },
  { name: 'queue-timeout', env: 'QUEUE_TIMEOUT_SECS', kind: 'number', default: 30, help: 'Seconds a request may wait in the queue before 503 (0 = forever).' },
  { name: 'queue-keepalive', env: 'QUEUE_KEEPALIVE_SECS', kind: 'number', default: D.queueKeepaliveMs / 1000, help: "A streaming request queued this long gets its 200 and SSE headers, then an SSE comment (': queued, position N') this often until it runs (0 = off)." },
  { name: 'priority-aging', env: 'PRIORITY_AGING_SECS', kind: 'number', default: DEFAULT_SCHEDULER_CONFIG.priorityAgingMs / 1000, help: 'A queued request that waited this long competes one priority level higher (0 = never).' },
  { name: 'request-timeout', env: 'REQUEST_TIMEOUT_SECS', kind: 'number', default: 300, help: 'Seconds to wait for a response to start, and longest silence mid-stream, before 504 (0 = none).' },
  { name: 'max-body-bytes', env: 'MAX_BODY_BYTES', kind: 'number', default: 32 * 1024 * 1024, help: 'Largest request body accepted; beyond it 413.' },
  { name: 'max-buffered-bytes', env: 'MAX_BUFFERED_BYTES', kind: 'number', default: D.maxBufferedBytes, help: 'Request body bytes held at once, all requests together (being read, queued or running); beyond it 503 + Retry-After (0 = no cap).' },
  { name: 'header-timeout', env: 'HEADER_TIMEOUT_SECS', kind: 'number', default: D.headerTimeoutMs / 1000, help: "Seconds a client may take to send a request's headers; then the connection is closed (408)." },
  { name: 'body-timeout', env: 'BODY_TIMEOUT_SECS', kind: 'number', default: D.bodyTimeoutMs / 1000, help: "Seconds a client may take to send a request's body after its headers; beyond it 408 (0 = none)." },
  { name: 'max-connections-per-ip', env: 'MAX_CONNECTIONS_PER_IP', kind: 'number', default: D.maxConnectionsPerIp, help: 'Open connections one address may hold, clients and workers together; beyond it 503 (0 = no cap; raise it behind your own proxy).' },
  { name: 'max-frame-bytes', env: 'MAX_FRAME_BYTES', kind: 'number', default: 64 * 1024 * 1024, help: 'Largest WebSocket frame a worker may send; beyond it the worker is closed (1009).' },
  { name: 'heartbeat-interval', env: 'HEARTBEAT_INTERVAL_SECS', kind: 'number', default: 15, help: 'Seconds between pings to each worker.' },
  { name: 'heartbeat-timeout', env: 'HEARTBEAT_TIMEOUT_SECS', kind: 'number', default: 45, help: 'Seconds of silence after which a worker is dropped and its work requeued.' },
  { name: 'max-worker-concurrency', env: 'MAX_WORKER_CONCURRENCY', kind: 'number', default: D.maxWorkerConcurrency, help: 'The most concurrent requests one worker may claim; larger claims are capped (with a warning to the worker).' },
  { name: 'max-requeues', env: 'MAX_REQUEUES', kind: 'number', default: 3, help: 'Times a request is retried on another worker after its worker is lost.' },
  { name: 'breaker-failures', env: 'BREAKER_FAILURES', kind: 'number', default: DEFAULT_SCHEDULER_CONFIG.breakerFailures, help: "Backend failures in a row (502-504 before any byte) after which a worker is skipped for a cool-down, then probed with one request (0 = never)." },
  { name: 'breaker-cooldown', env: 'BREAKER_COOLDOWN_SECS', kind: 'number', default: DEFAULT_SCHEDULER_CONFIG.breakerCooldownMs / 1000, help: 'Seconds a tripped worker is skipped before its probe request; doubles (to 60) while probes fail.' },
  { name: 'drain-timeout', env: 'DRAIN_TIMEOUT_SECS', kind: 'number', default: 30, help: 'Seconds in-flight requests get to finish on SIGTERM.' },
  { name: 'trust-proxy', env: 'TRUST_PROXY', kind: 'boolean', default: false, help: 'Take the peer address from X-Forwarded-For (only behind your own proxy).' },
  { name: 'trusted-proxy-hops', env: 'TRUSTED_PROXY_HOPS', kind: 'number', default: D.trustedProxyHops, help: 'With --trust-proxy: how many proxies of yours append to X-Forwarded-For; the client is that many entries from the right.' },
  { name: 'log-level', env: 'LOG_LEVEL', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error or silent.' },
];
