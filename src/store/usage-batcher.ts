// Usage per key, counted in memory on the request path and written to the store in one transaction
// a second: a request never waits on the disk.
import { type KeyUsage, type Outcome, type Store, type UsageDelta, emptyUsage } from './store.js';

export class UsageBatcher {
  private pending = new Map<string, UsageDelta>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly onError: (err: Error) => void,
    flushEveryMs = 1000,
  ) {
    this.timer = setInterval(() => this.flush(), flushEveryMs);
    this.timer.unref();
  }

  record(keyId: string, outcome: Outcome, promptTokens: number, completionTokens: number, at: number): void {
    let d = this.pending.get(keyId);
    if (!d) this.pending.set(keyId, (d = { keyId, ...emptyUsage() }));
    d.requests[outcome]++;
    d.promptTokens += promptTokens;
    d.completionTokens += completionTokens;
    d.lastUsedAt = at;
  }

  /** Writes what is pending. On a failed write the deltas are kept for the next try. */
  flush(): void {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      this.store.addUsage([...batch.values()]);
    } catch (err) {
      for (const d of batch.values()) this.merge(d);
      this.onError(err as Error);
    }
  }

  /** Stored totals plus what is not written yet. */
  totals(): Map<string, KeyUsage> {
    this.flush();
    return this.store.usage();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private merge(d: UsageDelta): void {
    const cur = this.pending.get(d.keyId);
    if (!cur) return void this.pending.set(d.keyId, d);
    for (const k of Object.keys(d.requests) as Outcome[]) cur.requests[k] += d.requests[k];
    cur.promptTokens += d.promptTokens;
    cur.completionTokens += d.completionTokens;
    cur.lastUsedAt = Math.max(cur.lastUsedAt ?? 0, d.lastUsedAt ?? 0) || undefined;
  }
}
