// What telemetry reads from a finished request. The server's Exchange has these fields already, so
// it is passed as it is: no record is built per request.
import type { TokenCounts } from '../protocol/index.js';
import type { Outcome } from '../store/index.js';

export interface FinishedRequest {
  readonly id: string;
  readonly model: string;
  readonly endpoint: string;
  readonly streaming: boolean;
  readonly workerId: string | undefined;
  readonly workerName: string | undefined;
  /** The alias target it was served as, when the client named an alias. */
  readonly target: string | undefined;
  /** Why it went to that worker (routing.ts), and the prompt blocks that worker had been sent. */
  readonly route: string | undefined;
  readonly matchedBlocks: number;
  readonly status: number;
  readonly errorCode: string | undefined;
  /** performance.now() milliseconds. */
  readonly receivedAt: number;
  readonly dispatchedAt: number | undefined;
  readonly firstByteAt: number | undefined;
  readonly tokenCounts: TokenCounts | undefined;
  readonly key: { readonly id: string; readonly name: string } | undefined;
}

const TIMED_OUT = new Set(['queue_timeout', 'request_timeout']);
const CANCELLED = new Set(['client_disconnect', 'client_too_slow']);

/** ok, client error (4xx), backend error (5xx, a failed stream), cancelled, or timed out. */
export function outcomeOf(status: number, errorCode: string | undefined): Outcome {
  if (errorCode !== undefined) {
    if (CANCELLED.has(errorCode)) return 'cancelled';
    if (TIMED_OUT.has(errorCode)) return 'timed_out';
  }
  if (status >= 200 && status < 400 && errorCode === undefined) return 'ok';
  if (status >= 400 && status < 500) return 'client_error';
  return 'backend_error';
}
