// Everything the worker can be told, with the defaults the CLI documents.
import { DEFAULT_HEALTH_OPTIONS, type HealthOptions } from './backend-health.js';
import type { ProxyChoice } from './egress-proxy.js';
import type { BackendSpec } from './local-backend.js';

export interface WorkerConfig {
  proxyUrl: string;
  workerSecret: string;
  /** The local backends (at least one), each with its models, limit and key. */
  backends: BackendSpec[];
  workerName: string;
  provider: string;
  /** Backend paths forwarded besides the inference routes (exact, validated by the CLI). */
  extraEndpoints: string[];
  modelsRefreshMs: number;
  heartbeatTimeoutMs: number;
  drainTimeoutMs: number;
  maxFrameBytes: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** How the backend's health is probed. */
  health: HealthOptions;
  /** Delay before retrying after the server refused our secret. */
  authRetryMs: number;
  logLevel: string;
  /** The proxy (if any) to the relay, chosen at start (egress-proxy.ts); each backend has its own. */
  relayEgress: ProxyChoice;
  /** How an https:// relay's certificate is checked. */
  relayTls: RelayTls;
}

export interface RelayTls {
  /** PEM certificates trusted besides the system's CAs (--ca-file). */
  ca?: string;
  /** Accept any certificate (--insecure-skip-verify). */
  insecureSkipVerify: boolean;
}

/** A backend's limit when none is given. */
export const DEFAULT_MAX_CONCURRENCY = 1;

export const DEFAULT_WORKER_CONFIG: Omit<WorkerConfig, 'proxyUrl' | 'workerSecret' | 'backends'> = {
  workerName: 'worker',
  provider: 'local',
  extraEndpoints: [],
  modelsRefreshMs: 30_000,
  heartbeatTimeoutMs: 45_000,
  drainTimeoutMs: 30_000,
  maxFrameBytes: 64 * 1024 * 1024,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  health: DEFAULT_HEALTH_OPTIONS,
  authRetryMs: 60_000,
  logLevel: 'info',
  relayEgress: { proxy: undefined, reason: 'default' },
  relayTls: { insecureSkipVerify: false },
};
