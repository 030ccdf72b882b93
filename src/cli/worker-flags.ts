// The worker's flags: one table, read by the CLI, --help and the README check.
import type { FlagSpec } from './flags.js';
import { DEFAULT_MAX_CONCURRENCY, DEFAULT_WORKER_CONFIG } from '../worker/config.js';

export const WORKER_FLAGS: FlagSpec[] = [
  { name: 'config', env: 'CONFIG_FILE', kind: 'string', help: "Read settings from this TOML or JSON file: keys are these flags without the leading --, plus 'backends' (a list of backends); a flag or env var wins over the file." },
  { name: 'proxy-url', env: 'PROXY_URL', kind: 'string', required: true, help: 'The relay to connect to, e.g. http://relay.example:8080 or https://example.org/relay (its path is kept; https → wss; ws:// and wss:// work too).' },
  { name: 'worker-secret', env: 'WORKER_SECRET', kind: 'string', required: true, orFlag: 'worker-secret-file', help: 'Shared secret the server expects, or a worker token it issued (prefer the env var or a file: flags show in ps).' },
  { name: 'worker-secret-file', env: 'WORKER_SECRET_FILE', kind: 'string', help: 'Read the worker secret from this file (one line) instead.' },
  { name: 'ca-file', env: 'CA_FILE', kind: 'string', help: "PEM file of the CA (or self-signed certificate) that signed an https:// relay's certificate, trusted besides the system's CAs." },
  { name: 'insecure-skip-verify', env: 'INSECURE_SKIP_VERIFY', kind: 'boolean', default: false, help: "Accept any certificate from an https:// relay (anyone on the path can then read the traffic and the secret); logged loudly. For tests only." },
  { name: 'backend-url', env: 'BACKEND_URL', kind: 'string', default: 'http://127.0.0.1:8000', help: 'The local OpenAI-compatible backend (llama-server, Ollama, vLLM, ...).' },
  { name: 'models', env: 'MODELS', kind: 'string', default: 'auto', help: "Comma-separated model names, or 'auto' (or '*') to read them from the backend. An entry PUBLIC=BACKEND advertises PUBLIC and sends the backend BACKEND as the body's model (e.g. 'chat=qwen2.5:7b-instruct,llama3.2')." },
  { name: 'model-map', env: 'MODEL_MAP', kind: 'list', separator: ',', help: "With --models auto: BACKEND=PUBLIC advertises a discovered model as PUBLIC instead (repeatable; BACKEND matches with or without ':latest')." },
  { name: 'worker-name', env: 'WORKER_NAME', kind: 'string', help: 'Name shown in logs and the dashboard (default: the host name).' },
  { name: 'max-concurrency', env: 'MAX_CONCURRENCY', kind: 'number', default: DEFAULT_MAX_CONCURRENCY, help: 'Backend calls run at once; the worker never exceeds it.' },
  { name: 'backend-api-key', env: 'BACKEND_API_KEY', kind: 'string', help: "Sent to the backend as 'Authorization: Bearer …' (e.g. vLLM --api-key)." },
  { name: 'extra-endpoints', env: 'EXTRA_ENDPOINTS', kind: 'string', help: 'Comma-separated backend paths to forward besides the inference routes (e.g. /v1/rerank); any other path a server asks for is refused with 404.' },
  { name: 'provider', env: 'PROVIDER', kind: 'string', default: DEFAULT_WORKER_CONFIG.provider, help: 'Provider label sent to the server.' },
  { name: 'models-refresh', env: 'MODELS_REFRESH_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.modelsRefreshMs / 1000, help: "Seconds between re-reads of the backend's models with --models auto (0 = never)." },
  { name: 'health-interval', env: 'HEALTH_INTERVAL_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.health.upIntervalMs / 1000, help: "Seconds between backend health probes (GET /health) while it is up (0 = none); while it is down, every 0.5 s doubling to 5 s." },
  { name: 'heartbeat-timeout', env: 'HEARTBEAT_TIMEOUT_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.heartbeatTimeoutMs / 1000, help: 'Reconnect after hearing nothing from the server for this long.' },
  { name: 'drain-timeout', env: 'DRAIN_TIMEOUT_SECS', kind: 'number', default: DEFAULT_WORKER_CONFIG.drainTimeoutMs / 1000, help: 'Seconds in-flight requests get to finish on SIGTERM.' },
  { name: 'max-frame-bytes', env: 'MAX_FRAME_BYTES', kind: 'number', default: DEFAULT_WORKER_CONFIG.maxFrameBytes, help: "Largest frame to send; a bigger backend answer fails with 502 instead of breaking the link." },
  { name: 'egress-proxy', env: 'EGRESS_PROXY', kind: 'string', help: "Proxy for the connection to the relay (http://, https://, socks5://; user:password@ for auth), or 'none' for direct; overrides HTTPS_PROXY / HTTP_PROXY / NO_PROXY, which apply otherwise." },
  { name: 'log-level', env: 'LOG_LEVEL', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error or silent.' },
];

/** The keys of one entry of a config file's `backends`: the single-backend flags (`backend-url` required). */
export const BACKEND_KEYS = ['backend-url', 'models', 'model-map', 'max-concurrency', 'backend-api-key'] as const;
