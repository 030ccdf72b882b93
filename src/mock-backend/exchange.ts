// One generation request in flight: counts it, notices at once when the client leaves, and owns
// the single pending timer so an abort stops the token clock immediately.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockCounters } from './stats.js';

export class Exchange {
  /** True once the connection is gone (finished, aborted or reset); nothing may be scheduled after. */
  closed = false;
  private timer: NodeJS.Timeout | undefined;
  private resetByUs = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    counters: MockCounters,
  ) {
    counters.begin();
    // 'close' comes for every response: after 'finish' when complete, or when the socket dies first
    res.once('close', () => {
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      counters.end(this.resetByUs ? 'reset' : res.writableFinished ? 'completed' : 'aborted');
    });
  }

  /** Runs `fn` after `ms` (synchronously when 0) unless the client left meanwhile. */
  after(ms: number, fn: () => void): void {
    if (this.closed) return;
    if (ms <= 0) return fn();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) fn();
    }, ms);
  }

  /** Drops the connection with a TCP RST, without answering. */
  resetNow(): void {
    this.resetByUs = true;
    const s = this.res.socket;
    if (s && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s?.destroy();
  }

  /** Closes the connection mid-response, after what was written so far reached the kernel. */
  cutAfterFlush(): void {
    this.resetByUs = true;
    const s = this.res.socket;
    if (!s) return;
    s.end(() => s.destroy());
  }
}
