// One model's wait queue: requeued requests first (FIFO), then priority bands (high, normal, low);
// within a band, round robin over tenants with waiting work, FIFO within a tenant. A request that
// has waited `agingMs` competes one band higher, so low priority is never starved for good.
// Every operation is O(1) amortised, however many tenants wait: removal is lazy (a slot is marked
// dead and skipped when reached), and each band keeps its tenants in a ring and its slots in arrival
// order (for aging), both cleaned as their heads are passed.
import { Deque } from './deque.js';

export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
/** Band index: 0 = high. */
export type Level = 0 | 1 | 2;

export const levelOf = (p: Priority): Level => PRIORITIES.indexOf(p) as Level;

/** One enqueueing of an item: a requeued item gets a fresh slot, so stale references stay dead. */
export interface Slot<T> {
  item: T;
  live: boolean;
  seq: number;
  tenant: string;
  level: Level;
  enqueuedAt: number;
  /** Live slots ahead of it when it was queued, and the queue's `served` count then. */
  ahead: number;
  servedBefore: number;
  requeued: boolean;
}

interface TenantQueue<T> {
  tenant: string;
  slots: Deque<Slot<T>>;
}

interface Band<T> {
  /** Live slots in the band: empty bands are skipped without touching their deques. */
  count: number;
  tenants: Map<string, TenantQueue<T>>;
  /** Tenants with (possibly) live slots, in turn order (the queues themselves: no lookup to peek). */
  ring: Deque<TenantQueue<T>>;
  /** Every slot of the band in arrival order: the oldest live one is the aging candidate. */
  byAge: Deque<Slot<T>>;
}

const isLive = <T>(s: Slot<T>): boolean => s.live;
const always = (): boolean => true;

export class FairQueue<T> {
  private readonly requeued = new Deque<Slot<T>>();
  private requeuedCount = 0;
  private readonly bands: Band<T>[] = [0, 1, 2].map(() => ({ count: 0, tenants: new Map(), ring: new Deque<TenantQueue<T>>(), byAge: new Deque<Slot<T>>() }));
  /** Live slots. */
  length = 0;
  /** Slots taken so far: with a slot's `servedBefore`, an estimate of how far it has advanced. */
  served = 0;

  /** `agingMs` 0 = no aging. A `blocked` tenant (at its in-flight limit) is passed over until it
   * isn't; requeued slots are never held back. */
  constructor(
    private readonly agingMs: number,
    private readonly blocked: (tenant: string) => boolean = () => false,
  ) {}

  /** Queues `item`; a requeued one goes before everything else. Returns its slot (for `remove`). */
  push(item: T, seq: number, tenant: string, level: Level, now: number, requeued: boolean): Slot<T> {
    const slot: Slot<T> = { item, live: true, seq, tenant, level, enqueuedAt: now, ahead: this.length, servedBefore: this.served, requeued };
    this.length++;
    if (requeued) {
      this.requeuedCount++;
      this.requeued.push(slot);
      return slot;
    }
    const band = this.bands[level]!;
    band.count++;
    let q = band.tenants.get(tenant);
    if (!q) {
      band.tenants.set(tenant, (q = { tenant, slots: new Deque() }));
      band.ring.push(q);
    }
    q.slots.push(slot);
    band.byAge.push(slot);
    return slot;
  }

  remove(slot: Slot<T>): void {
    if (!slot.live) return;
    this.kill(slot);
  }

  private kill(slot: Slot<T>): void {
    slot.live = false;
    this.length--;
    if (slot.requeued) this.requeuedCount--;
    else this.bands[slot.level]!.count--;
  }

  /** The band the last `peek`'s slot competes in (-1: requeued, above all). A field, not a returned
   * pair: a wildcard worker's dispatch peeks every model's queue, so peek must not allocate. */
  peekLevel = 0;

  /** The slot `shift` would take. */
  peek(now: number): Slot<T> | undefined {
    if (this.requeuedCount > 0) {
      const r = this.requeued.peek(isLive);
      if (r) {
        this.peekLevel = -1;
        return r;
      }
    }
    for (let level = 0; level < 3; level++) {
      const head = this.bands[level]!.count > 0 ? this.roundRobinHead(level) : undefined;
      const aged = level < 2 && this.bands[level + 1]!.count > 0 ? this.agedHead(level + 1, now) : undefined;
      const pick = aged && (!head || aged.seq < head.seq) ? aged : head;
      if (pick) {
        this.peekLevel = level;
        return pick;
      }
    }
    return undefined;
  }

  /** Takes the next slot: the next tenant's turn in the highest band with work. */
  shift(now: number): Slot<T> | undefined {
    const slot = this.peek(now);
    if (!slot) return undefined;
    if (slot.requeued) this.requeued.shift();
    else if (slot.level === this.peekLevel) {
      // Its tenant's turn is used: the tenant goes to the back of the ring.
      const band = this.bands[slot.level]!;
      const turn = band.ring.shift()!;
      turn.slots.shift();
      band.ring.push(turn);
    }
    // An aged slot leaves its tenant's deque lazily (dead from here on); the ring keeps its order.
    this.kill(slot);
    this.served++;
    return slot;
  }

  /** Where a slot stands, roughly: 1-based, its place when queued less the turns taken since (fair
   * turns and priorities move it faster or slower than that). */
  position(slot: Slot<T>): number {
    return Math.max(1, slot.ahead + 1 - (this.served - slot.servedBefore));
  }

  /** The live slot of the tenant whose turn it is in `level`; tenants left with no work drop out. */
  private roundRobinHead(level: number): Slot<T> | undefined {
    const band = this.bands[level]!;
    // Blocked tenants lose their turn (to the back of the ring): at most one pass over them.
    for (let passed = 0; ; ) {
      const turn = band.ring.peek(always);
      if (turn === undefined) return undefined;
      const head = turn.slots.peek(isLive);
      if (!head) {
        band.ring.shift();
        band.tenants.delete(turn.tenant);
        continue;
      }
      if (!this.blocked(turn.tenant)) return head;
      if (++passed > band.ring.rawLength) return undefined;
      band.ring.shift();
      band.ring.push(turn);
    }
  }

  private agedHead(level: number, now: number): Slot<T> | undefined {
    if (this.agingMs <= 0) return undefined;
    const oldest = this.bands[level]!.byAge.peek(isLive);
    // (A blocked tenant's oldest slot holds aging back for the band until the tenant has room.)
    return oldest && now - oldest.enqueuedAt >= this.agingMs && !this.blocked(oldest.tenant) ? oldest : undefined;
  }
}
