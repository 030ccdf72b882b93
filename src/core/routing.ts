// The routing rule: which eligible worker a request goes to, given what the prefix index remembers
// and how loaded the workers are. One place, called by the scheduler with the least-loaded
// candidate it already found (today's `least-loaded` rule) and a way to look candidates up by id.
//
// cache-aware: an affinity key (prompt_cache_key, X-Session-Id) names the worker that served that
// key last; without one (or when that worker can't take it), the candidate that was sent the longest
// prefix of the prompt. Either wins only while it is not much busier than the least-loaded
// candidate: its load with this request (in flight + 1, over the capacity it has shown) is at most
// `loadFactor` times the least-loaded one's. Otherwise the least-loaded candidate gets it (and, as
// for every dispatch, the index learns the new home).
import { PrefixIndex, type PrefixIndexLimits } from './prefix-index.js';

export const ROUTING_MODES = ['cache-aware', 'least-loaded'] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];

/** Why a request went where it did (the `reason` label of modelrelay_routing_decisions_total). */
export const ROUTE_REASONS = ['affinity', 'prefix', 'load_bound', 'least_loaded', 'queued', 'queued_affinity'] as const;
export type RouteReason = (typeof ROUTE_REASONS)[number];

/** What the edge read from a request's body and headers for routing (no text, only hashes). */
export interface RoutingHints {
  /** Chained block hashes of the prompt: [i] covers blocks 0…i. */
  prefix?: readonly number[];
  /** Hash of the affinity key (prompt_cache_key or X-Session-Id), if one was sent. */
  affinity?: number;
}

export interface RoutingConfig extends PrefixIndexLimits {
  mode: RoutingMode;
  /** How much busier than the least-loaded candidate a preferred worker may be and still win. */
  loadFactor: number;
}

export const DEFAULT_ROUTING_CONFIG: RoutingConfig = {
  mode: 'cache-aware',
  loadFactor: 2,
  maxEntries: 100_000,
  maxBytes: 16 * 1024 * 1024,
};

/** How the rule reads a worker's load: requests in flight, and the capacity it has shown (≥ 1). */
export interface LoadOf<W> {
  inFlight(w: W): number;
  capacity(w: W): number;
}

export interface Route<W> {
  worker: W;
  reason: RouteReason;
  /** Blocks of the prompt the chosen worker was sent before (0 when none, or unknown). */
  matched: number;
}

export class Router<W extends { id: string }> {
  readonly config: RoutingConfig;
  readonly index: PrefixIndex;
  /** Decisions so far, by reason (read at scrape time). */
  readonly decisions: Record<RouteReason, number> = { affinity: 0, prefix: 0, load_bound: 0, least_loaded: 0, queued: 0, queued_affinity: 0 };

  constructor(
    config: Partial<RoutingConfig>,
    private readonly load: LoadOf<W>,
  ) {
    this.config = { ...DEFAULT_ROUTING_CONFIG, ...config };
    this.index = new PrefixIndex(this.config);
  }

  get active(): boolean {
    return this.config.mode === 'cache-aware';
  }

  /** Where a request with `hints` goes among the candidates; `least` is the least-loaded one and
   * `candidate(id)` the candidate with that id (undefined if that worker can't take the request). */
  choose(hints: RoutingHints | undefined, least: W, candidate: (id: string) => W | undefined): Route<W> {
    if (!this.active || !hints) return { worker: least, reason: 'least_loaded', matched: 0 };
    let preferred: W | undefined;
    let reason: RouteReason = 'prefix';
    let matched = 0;
    let wanted = false;
    if (hints.affinity !== undefined) {
      const id = this.index.last(hints.affinity);
      if (id !== undefined) {
        wanted = true;
        preferred = candidate(id);
        reason = 'affinity';
      }
    }
    if (!preferred && hints.prefix && hints.prefix.length > 0) {
      const m = this.index.longest(hints.prefix, (id) => candidate(id) !== undefined);
      if (m) {
        wanted = true;
        preferred = candidate(m.workerId);
        reason = 'prefix';
        matched = m.blocks;
      } else if (!wanted) {
        // Held only by workers that can't take it now (busy): say so (a second walk, on a miss only).
        wanted = this.index.longest(hints.prefix, always) !== undefined;
      }
    }
    if (!preferred) return { worker: least, reason: wanted ? 'load_bound' : 'least_loaded', matched: 0 };
    if (preferred === least || this.withinBound(preferred, least)) return { worker: preferred, reason, matched };
    return { worker: least, reason: 'load_bound', matched: 0 };
  }

  /** The worker a waiting request would rather have (among `serves`), to let it take the request
   * when it frees a slot; undefined when none is known. */
  preferred(hints: RoutingHints | undefined, serves: (id: string) => boolean): string | undefined {
    if (!this.active || !hints) return undefined;
    if (hints.affinity !== undefined) {
      const id = this.index.last(hints.affinity);
      if (id !== undefined && serves(id)) return id;
    }
    return hints.prefix && hints.prefix.length > 0 ? this.index.longest(hints.prefix, serves)?.workerId : undefined;
  }

  /** The request was dispatched to `workerId`: its prompt and key now live there. */
  learn(hints: RoutingHints | undefined, workerId: string): void {
    if (!this.active || !hints) return;
    if (hints.prefix) this.index.learn(hints.prefix, workerId);
    if (hints.affinity !== undefined) this.index.learn([hints.affinity], workerId);
  }

  forgetWorker(workerId: string): void {
    this.index.forgetWorker(workerId);
  }

  count(reason: RouteReason): void {
    this.decisions[reason]++;
  }

  /** The bounded-load test: (in flight + 1) / capacity of the preferred worker against the
   * least-loaded one's, cross-multiplied. */
  private withinBound(preferred: W, least: W): boolean {
    const { inFlight, capacity } = this.load;
    return (inFlight(preferred) + 1) * capacity(least) <= this.config.loadFactor * (inFlight(least) + 1) * capacity(preferred);
  }
}

const always = (): boolean => true;
