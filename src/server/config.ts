// Everything the server can be told, with the defaults the CLI documents.
import type { SchedulerConfig } from '../core/index.js';

export interface ServerConfig {
  host: string;
  /** 0 = pick a free port (the bound URL is logged and returned). */
  port: number;
  workerSecret: string;
  maxBodyBytes: number;
  maxFrameBytes: number;
  scheduler: Partial<SchedulerConfig>;
  /** How long in-flight work may take to finish on SIGTERM, or when a worker is told to drain. */
  drainTimeoutMs: number;
  /** Honour X-Forwarded-For for the peer address (only behind a proxy you run). */
  trustProxy: boolean;
  /** A worker must send `register` within this long after connecting. */
  registerTimeoutMs: number;
  /** Failed worker authentications allowed per peer address per minute. */
  authFailuresPerMinute: number;
}

export const DEFAULT_SERVER_CONFIG: Omit<ServerConfig, 'workerSecret'> = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 32 * 1024 * 1024,
  maxFrameBytes: 64 * 1024 * 1024,
  scheduler: {},
  drainTimeoutMs: 30_000,
  trustProxy: false,
  registerTimeoutMs: 5_000,
  authFailuresPerMinute: 10,
};
