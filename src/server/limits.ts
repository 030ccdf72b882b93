// Every limit on what untrusted input can make the server hold, as one table: the README's "Limits"
// table is checked against it (test/unit/docs.test.ts), and each row names the value the code uses.
import { DEFAULT_SERVER_CONFIG as D, MAX_MODEL_NAME } from './config.js';
import { FLOW_OVERDRAFT_BYTES } from './flow-credit.js';
import { STREAM_BUFFER_CAP } from './relay.js';
import { MAX_MODELS, MAX_WORKER_NAME } from './worker-session.js';
import { DEFAULT_ROUTING_CONFIG as R, DEFAULT_SCHEDULER_CONFIG as S } from '../core/index.js';

export type LimitUnit = 'bytes' | 'seconds' | 'count' | 'characters' | 'per minute';

export interface LimitSpec {
  what: string;
  /** The server flag that sets it, if an operator may tune it. */
  flag?: string;
  /** The default (bytes, seconds, ...: see `unit`). */
  value: number;
  unit: LimitUnit;
  /** What a peer gets when it is reached. */
  refusal: string;
}

export const LIMITS: LimitSpec[] = [
  { what: 'open connections in all (clients and workers)', flag: 'max-connections', value: D.maxConnections, unit: 'count', refusal: '503 + `Retry-After`, connection closed' },
  { what: 'open connections per address', flag: 'max-connections-per-ip', value: D.maxConnectionsPerIp, unit: 'count', refusal: '503 + `Retry-After`, connection closed' },
  { what: 'request line and headers', flag: 'max-header-bytes', value: D.maxHeaderBytes, unit: 'bytes', refusal: '431, connection closed' },
  { what: "time to send a request's headers", flag: 'header-timeout', value: D.headerTimeoutMs / 1000, unit: 'seconds', refusal: '408, connection closed' },
  { what: 'time to send its body after the headers', flag: 'body-timeout', value: D.bodyTimeoutMs / 1000, unit: 'seconds', refusal: '408, connection closed' },
  { what: 'idle time of a keep-alive connection', flag: 'keep-alive-timeout', value: D.keepAliveTimeoutMs / 1000, unit: 'seconds', refusal: 'connection closed' },
  { what: 'one request body', flag: 'max-body-bytes', value: D.maxBodyBytes, unit: 'bytes', refusal: '413' },
  { what: 'all request bodies held at once (read, queued or running)', flag: 'max-buffered-bytes', value: D.maxBufferedBytes, unit: 'bytes', refusal: '503 + `Retry-After`, before the body is read' },
  { what: 'a `model` name in a request', value: MAX_MODEL_NAME, unit: 'characters', refusal: '400' },
  { what: 'requests waiting for a worker', flag: 'max-queue-len', value: S.maxQueueLen, unit: 'count', refusal: '429 + `Retry-After`' },
  { what: 'time waiting for a worker', flag: 'queue-timeout', value: S.queueTimeoutMs / 1000, unit: 'seconds', refusal: '503 + `Retry-After`' },
  { what: 'time to the first byte, and silence mid-stream', flag: 'request-timeout', value: S.requestTimeoutMs / 1000, unit: 'seconds', refusal: '504 (or an SSE error event), the worker told to cancel' },
  { what: 'worker connections (registered or not)', flag: 'max-workers', value: D.maxWorkers, unit: 'count', refusal: 'upgrade answered 503 + `Retry-After`' },
  { what: 'worker connections waiting to register', flag: 'max-pending-workers', value: D.maxPendingWorkers, unit: 'count', refusal: 'upgrade answered 503 + `Retry-After`' },
  { what: 'time to register after the upgrade', flag: 'register-timeout', value: D.registerTimeoutMs / 1000, unit: 'seconds', refusal: 'worker closed (1002)' },
  { what: 'failed worker logins per address', value: D.authFailuresPerMinute, unit: 'per minute', refusal: '429 + `Retry-After` for further failures' },
  { what: 'failed admin logins per address (admin API, guarded `/metrics`)', value: D.authFailuresPerMinute, unit: 'per minute', refusal: '429 + `Retry-After` for further failures' },
  { what: 'requests in flight per worker connection', flag: 'max-worker-concurrency', value: D.maxWorkerConcurrency, unit: 'count', refusal: 'a larger claim is capped, with a warning in `register_ack`' },
  { what: 'models per worker', value: MAX_MODELS, unit: 'count', refusal: 'extra ones dropped, one warning' },
  { what: 'a model name from a worker', value: MAX_MODEL_NAME, unit: 'characters', refusal: 'dropped, one warning' },
  { what: 'a worker name', value: MAX_WORKER_NAME, unit: 'characters', refusal: 'truncated, one warning' },
  { what: 'WebSocket frame from a worker', flag: 'max-frame-bytes', value: D.maxFrameBytes, unit: 'bytes', refusal: 'worker closed (1009)' },
  { what: 'silence from a worker', flag: 'heartbeat-timeout', value: S.heartbeatTimeoutMs / 1000, unit: 'seconds', refusal: 'worker dropped, its requests requeued' },
  { what: 'bytes queued for one slow streaming client', value: STREAM_BUFFER_CAP, unit: 'bytes', refusal: 'stream ends with `client_too_slow`' },
  { what: 'stream bytes a flow-control worker sends without credit', value: FLOW_OVERDRAFT_BYTES, unit: 'bytes', refusal: 'worker closed (1008), its requests requeued or failed' },
  { what: 'prompt blocks and affinity keys the routing index remembers', flag: 'routing-max-entries', value: R.maxEntries, unit: 'count', refusal: 'least recently used forgotten' },
  { what: 'memory of the routing index (estimated)', flag: 'routing-max-bytes', value: R.maxBytes, unit: 'bytes', refusal: 'least recently used forgotten' },
];

/** "32 MiB", "10 s", "256 characters": how the README shows a limit's value. */
export function formatLimit(value: number, unit: LimitUnit): string {
  switch (unit) {
    case 'bytes':
      for (const [size, name] of [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']] as const) if (value >= size && value % size === 0) return `${value / size} ${name}`;
      return `${value} bytes`;
    case 'seconds':
      return `${value} s`;
    case 'count':
      return String(value);
    case 'characters':
      return `${value} characters`;
    case 'per minute':
      return `${value} per minute`;
    default: {
      const never: never = unit;
      return never;
    }
  }
}
