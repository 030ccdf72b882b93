// What the relay recently sent where: prompt prefixes (as chained block hashes) and affinity keys,
// each mapped to the workers that received them, most recent first. Bounded by entries and by an
// estimate of its memory, least recently used first out; pure (no I/O, no clock).
//
// A prompt is a list of hashes h1…hn where hi covers blocks 1…i (the edge chains them), so holding
// hi means the worker was sent the same first i blocks. Learning a prompt touches h1…hn in that
// order, so a prefix is never evicted before a longer prompt that contains it.

/** Workers remembered per hash: a shared prefix (one system prompt) may be cached on a few. */
export const WORKERS_PER_ENTRY = 4;
/** Estimated bytes of one entry: the Map slot, the key, the entry and its small array. */
const ENTRY_BYTES = 96;
const WORKER_REF_BYTES = 8;

export interface PrefixIndexLimits {
  /** Hashes remembered, prefixes and affinity keys together. */
  maxEntries: number;
  /** Estimated memory of the index (entries and their worker lists). */
  maxBytes: number;
}

export interface PrefixMatch {
  workerId: string;
  /** Blocks of the prompt the worker was sent before (1 = the first block only). */
  blocks: number;
}

export class PrefixIndex {
  /** hash → worker ids, most recent first. Map order is the LRU order (oldest first). */
  private readonly entries = new Map<number, string[]>();
  private estimate = 0;

  constructor(readonly limits: PrefixIndexLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.estimate;
  }

  /** `hashes` (a prompt's chain, or one affinity key) were sent to `workerId`. */
  learn(hashes: readonly number[], workerId: string): void {
    for (const h of hashes) this.touch(h, workerId);
    this.evict();
  }

  /** The longest prefix of `hashes` some candidate was sent, the most recent such candidate. */
  longest(hashes: readonly number[], isCandidate: (workerId: string) => boolean): PrefixMatch | undefined {
    for (let i = hashes.length - 1; i >= 0; i--) {
      const ws = this.entries.get(hashes[i]!);
      if (!ws) continue;
      for (const id of ws) if (isCandidate(id)) return { workerId: id, blocks: i + 1 };
    }
    return undefined;
  }

  /** The worker `hash` was sent to last, if any. */
  last(hash: number): string | undefined {
    return this.entries.get(hash)?.[0];
  }

  /** The worker left: nothing points to it any more (O(entries), on a worker's departure only). */
  forgetWorker(workerId: string): void {
    for (const [h, ws] of this.entries) {
      const i = ws.indexOf(workerId);
      if (i < 0) continue;
      ws.splice(i, 1);
      this.estimate -= WORKER_REF_BYTES;
      if (ws.length === 0) {
        this.entries.delete(h);
        this.estimate -= ENTRY_BYTES;
      }
    }
  }

  /** Every worker the index names (for invariant checks: O(entries)). */
  workerIds(): Set<string> {
    const ids = new Set<string>();
    for (const ws of this.entries.values()) for (const id of ws) ids.add(id);
    return ids;
  }

  private touch(h: number, workerId: string): void {
    const ws = this.entries.get(h);
    if (!ws) {
      this.entries.set(h, [workerId]);
      this.estimate += ENTRY_BYTES + WORKER_REF_BYTES;
      return;
    }
    // Most recently used goes to the back of the Map's order.
    this.entries.delete(h);
    this.entries.set(h, ws);
    if (ws[0] === workerId) return;
    const i = ws.indexOf(workerId);
    if (i > 0) ws.splice(i, 1);
    else if (ws.length >= WORKERS_PER_ENTRY) ws.pop();
    else this.estimate += WORKER_REF_BYTES;
    ws.unshift(workerId);
  }

  private evict(): void {
    const { maxEntries, maxBytes } = this.limits;
    while (this.entries.size > 0 && (this.entries.size > maxEntries || this.estimate > maxBytes)) {
      const [h, ws] = this.entries.entries().next().value!;
      this.entries.delete(h);
      this.estimate -= ENTRY_BYTES + ws.length * WORKER_REF_BYTES;
    }
  }
}
