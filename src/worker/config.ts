// Everything the worker can be told, with the defaults the CLI documents.
import { DEFAULT_HEALTH_OPTIONS, type HealthOptions } from './backend-health.js';
import { DIRECT, type EgressRoutes } from './egress-proxy.js';

export interface WorkerConfig {
  proxyUrl: string;
  workerSecret: string;
  backendUrl: string;
  /** Explicit model entries (`name`, or `public=backend`: model-names.ts), or 'auto' to read them
   * from the backend. */
  models: string[] | 'auto';
  /** With 'auto': `backend=public` entries renaming discovered models. */
  modelMap: string[];
  workerName: string;
  maxConcurrency: number;
  /** Sent to the backend as `Authorization: Bearer …` in place of the client's. */
  backendApiKey?: string;
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
  /** The proxies (if any) to the relay and to the backend, chosen at start (egress-proxy.ts). */
  egress: EgressRoutes;
  /** How an https:// relay's certificate is checked. */
  relayTls: RelayTls;
}

export interface RelayTls {
  /** PEM certificates trusted besides the system's CAs (--ca-file). */
  ca?: string;
  /** Accept any certificate (--insecure-skip-verify). */
  insecureSkipVerify: boolean;
}

export const DEFAULT_WORKER_CONFIG: Omit<WorkerConfig, 'proxyUrl' | 'workerSecret' | 'backendUrl'> = {
  models: 'auto',
  modelMap: [],
  workerName: 'worker',
  maxConcurrency: 1,
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
  egress: DIRECT,
  relayTls: { insecureSkipVerify: false },
};
