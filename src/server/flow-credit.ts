// flow-control, server side: a stream's bytes are credited back to its worker once the client's
// socket took them, so a slow reader slows its own stream at the source and the server never holds
// more than about one window per stream.
import type { ServerResponse } from 'node:http';

/** Bytes a worker may have in flight per stream before it must wait for credit. */
export const FLOW_WINDOW_BYTES = 1024 * 1024;
/** A worker that sends while this much is unacknowledged ignores its credit: it is closed (1008).
 * Twice the window, so a worker's last chunk in flight as credit crosses it is never mistaken. */
export const FLOW_OVERDRAFT_BYTES = 2 * FLOW_WINDOW_BYTES;
/** Credit is returned in batches: one frame per quarter window, not one per chunk. */
const CREDIT_BATCH = FLOW_WINDOW_BYTES / 4;

export class FlowCredit {
  private pending = 0;
  private waitingDrain = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly grant: (bytes: number) => void,
  ) {}

  /** Stream bytes the worker sent that have not been credited back yet. */
  get unacknowledged(): number {
    return this.pending;
  }

  /** Call after writing `bytes` to the client; `flushed` is what res.write() returned. */
  wrote(bytes: number, flushed: boolean): void {
    this.pending += bytes;
    if (!flushed) {
      if (!this.waitingDrain) {
        this.waitingDrain = true;
        this.res.once('drain', () => {
          this.waitingDrain = false;
          this.release();
        });
      }
      return;
    }
    if (!this.waitingDrain && this.pending >= CREDIT_BATCH) this.release();
  }

  private release(): void {
    if (this.pending === 0 || this.res.destroyed) return;
    const n = this.pending;
    this.pending = 0;
    this.grant(n);
  }
}
