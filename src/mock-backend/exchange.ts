// One generation request in flight: counts it, notices at once when the client leaves, and owns
// the single pending timer so an abort stops the token clock immediately.
//
// A call counts as active from its request until the moment the backend knows it is over: its last
// byte handed to the kernel, its client seen leaving (the connection's FIN or RST, not the later
// teardown), or the mock cutting it on purpose. Counting to the teardown instead would have `maxActive` see a
// client's next call, sent the moment the previous one was aborted, overlap a call already gone.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockCounters } from './stats.js';

export class Exchange {
  /** True once the call is over (finished, aborted or reset); nothing may be scheduled after. */
  closed = false;
  private timer: NodeJS.Timeout | undefined;
  private resetByUs = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly counters: MockCounters,
  ) {
    counters.begin();
    // 'close' comes for every response: after 'finish' when complete, or when the socket dies first
    res.once('close', () => this.over(this.resetByUs ? 'reset' : res.writableFinished ? 'completed' : 'aborted'));
    res.once('finish', () => this.over('completed'));
    // The client closed its side (FIN), or reset the connection (RST, when it left unread data
    // behind), before the answer was done: it left. node:http tears the socket down later.
    req.socket.once('end', this.onClientGone);
    req.socket.once('error', this.onClientGone);
  }

  private readonly onClientGone = (): void => {
    if (!this.res.writableFinished) this.over('aborted');
  };

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
    this.over('reset');
    const s = this.res.socket;
    if (s && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s?.destroy();
  }

  /** Closes the connection mid-response, after what was written so far reached the kernel. */
  cutAfterFlush(): void {
    this.resetByUs = true;
    this.over('reset');
    const s = this.res.socket;
    if (!s) return;
    // Node 22+ holds this tick's response writes (corked) until the next tick: end the socket
    // after them, or they never leave.
    setImmediate(() => s.end(() => s.destroy()));
  }

  private over(outcome: 'completed' | 'aborted' | 'reset'): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    // keep-alive sockets carry many calls
    this.req.socket.off('end', this.onClientGone);
    this.req.socket.off('error', this.onClientGone);
    this.counters.end(outcome);
  }
}
