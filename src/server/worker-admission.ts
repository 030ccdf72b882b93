// How many worker connections the server holds: in all (--max-workers), and among them those that
// upgraded but have not registered yet (--max-pending-workers; each gets --register-timeout to do
// so). Asked before an authenticated upgrade is accepted: a refusal is an HTTP 503 with Retry-After,
// so the worker's ordinary reconnect backoff takes it from there.
import type { WebSocket } from 'ws';

export interface AdmissionLimits {
  maxWorkers: number;
  maxPending: number;
}

interface Tracked {
  readonly state: string;
}

export class WorkerAdmission {
  /** Every worker socket not yet closed, with its session (whose state tells pending from registered). */
  private readonly live = new Map<WebSocket, Tracked>();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Why a new worker connection must be refused now, or undefined to accept it. */
  refusal(): string | undefined {
    let workers = 0;
    let pending = 0;
    for (const s of this.live.values()) {
      if (s.state === 'closed') continue;
      workers++;
      if (s.state === 'awaiting_register') pending++;
    }
    if (this.limits.maxWorkers > 0 && workers >= this.limits.maxWorkers) return `the server is at its limit of ${this.limits.maxWorkers} worker connections`;
    if (this.limits.maxPending > 0 && pending >= this.limits.maxPending) return `the server is at its limit of ${this.limits.maxPending} worker connections waiting to register`;
    return undefined;
  }

  /** Counts `session` until its socket closes. */
  track(ws: WebSocket, session: Tracked): void {
    this.live.set(ws, session);
    ws.once('close', () => this.live.delete(ws));
  }
}
