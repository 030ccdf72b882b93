// Queued requests listed under the worker that holds their prompt (or their affinity key), so that
// when that worker frees a slot it can take one of them instead of the head of the queue. Lists are
// in arrival order; an entry stops counting when `isWaiting` says so (dispatched, cancelled, or its
// preference changed) and is dropped lazily. Pure.

/** Live entries looked at per take: the "small window" a freed worker searches. */
export const AFFINE_WINDOW = 16;

export class AffineWaiters<T> {
  private readonly lists = new Map<string, T[]>();

  constructor(private readonly isWaiting: (item: T, workerId: string) => boolean) {}

  has(workerId: string): boolean {
    return this.lists.has(workerId);
  }

  add(workerId: string, item: T): void {
    let list = this.lists.get(workerId);
    if (!list) this.lists.set(workerId, (list = []));
    list.push(item);
    // A worker that never frees a slot never takes: keep its list from growing with dead entries.
    if (list.length >= 64 && (list.length & (list.length - 1)) === 0) this.compact(workerId, list);
  }

  /** The first of the worker's waiting items (within the window) that `accept` takes, removed. */
  take(workerId: string, accept: (item: T) => boolean): T | undefined {
    const list = this.lists.get(workerId);
    if (!list) return undefined;
    let live = 0;
    for (let i = 0; i < list.length && live < AFFINE_WINDOW; ) {
      const item = list[i]!;
      if (!this.isWaiting(item, workerId)) {
        list.splice(i, 1);
        continue;
      }
      if (accept(item)) {
        list.splice(i, 1);
        if (list.length === 0) this.lists.delete(workerId);
        return item;
      }
      live++;
      i++;
    }
    if (list.length === 0) this.lists.delete(workerId);
    return undefined;
  }

  forget(workerId: string): void {
    this.lists.delete(workerId);
  }

  /** Entries held, live or not (for the invariant check). */
  get size(): number {
    let n = 0;
    for (const l of this.lists.values()) n += l.length;
    return n;
  }

  private compact(workerId: string, list: T[]): void {
    const live = list.filter((x) => this.isWaiting(x, workerId));
    if (live.length === 0) this.lists.delete(workerId);
    else this.lists.set(workerId, live);
  }
}
