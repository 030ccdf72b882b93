// The scheduler: worker registry, per-model wait queues, selection and every deadline, as pure logic.
// Events go in (with the time), commands come out; no sockets, timers or clock reads live here.
//
// Request lifecycle:
//   submit ─► queued ──(slot free)──► running ──(complete)──► gone
//               │  └─(queue timeout / client gone / shutdown)─► gone
//               running ─(client gone / timeout)─► cancelling ─(ack or grace)─► gone   [cancel-ack workers]
//               running ─(worker lost, no byte sent yet)─► queued (front)  [≤ maxRequeues]
//               running ─(worker lost after bytes were sent)─► gone + fail  (never spliced)
//               running ─(backend unavailable, before a byte)─► queued (front) on a healthy worker, or fail
//
// Worker health: a worker whose backend is down (backend-health extension) gets nothing until it
// reports it up. Independently, a circuit breaker per worker: `breakerFailures` backend failures in a
// row open it (skipped for a cool-down), then one probe request decides: success closes it, failure
// reopens it for twice as long (for base-protocol workers, and backends that fail unnoticed).
//
// Model aliases (model-aliases.ts): a request for an alias queues under the alias's name and may run
// on any worker serving any of its targets; the dispatch names the target chosen for that worker.
//
// Invariant: a queue for name N (a model, or an alias) holds a request that may run (its tenant is
// below its in-flight limit) only while no worker eligible for N (for an alias: for any of its
// targets) has a free slot, because every event that frees capacity dispatches at once. So a freed
// slot only ever looks at the queues of the models its own worker serves and of the aliases listing
// them. (checkInvariants checks it.)
//
// Routing (routing.ts): among the eligible workers, the least loaded (the `least-loaded` rule), or
// with `cache-aware` the one that holds the request's prompt prefix or affinity key, within a load
// bound. A request that must wait is listed under the worker holding its prompt (affine-waiters.ts);
// when that worker frees a slot it may take it ahead of the queue's head, within a small window and
// at most MAX_PASSES times past any one head, so the fair order bends but never starves anyone.
import type { CancelReason } from '../protocol/index.js';
import { type Deadline, DeadlineHeap } from './deadline-heap.js';
import type { ErrorCode } from './errors.js';
import { FairQueue, levelOf, type Level, type Priority, type Slot } from './fair-queue.js';
import { type ModelAlias, ModelAliases } from './model-aliases.js';
import { AffineWaiters } from './affine-waiters.js';
import { type RouteReason, Router, type RoutingConfig, type RoutingHints } from './routing.js';

export interface SchedulerConfig {
  /** 0 = unlimited */
  maxQueueLen: number;
  /** 0 = none */
  queueTimeoutMs: number;
  /** Wait for the first byte, and longest silence within a stream. 0 = none */
  requestTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxRequeues: number;
  /** How long a cancelled request may hold its slot while a cancel-ack worker confirms. */
  cancelGraceMs: number;
  /** Backend failures in a row (before any byte) that open a worker's circuit breaker. 0 = never. */
  breakerFailures: number;
  /** How long an open breaker skips the worker before one probe request; doubles while probes fail. */
  breakerCooldownMs: number;
  /** A request that waited this long competes one priority band higher (0 = never). */
  priorityAgingMs: number;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  maxQueueLen: 100,
  queueTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  heartbeatIntervalMs: 15_000,
  heartbeatTimeoutMs: 45_000,
  maxRequeues: 3,
  cancelGraceMs: 2_000,
  breakerFailures: 3,
  breakerCooldownMs: 5_000,
  priorityAgingMs: 30_000,
};

/** How a finished request went, as far as the worker's health is concerned. */
export type Outcome = 'ok' | 'backend_failure' | 'neutral';

export type Command =
  /** `target`: for a request that named an alias, the target model the worker is to serve it as. */
  | { type: 'dispatch'; requestId: string; workerId: string; target?: string }
  | { type: 'fail'; requestId: string; code: ErrorCode; message: string }
  | { type: 'cancel'; requestId: string; workerId: string; reason: CancelReason }
  | { type: 'ping'; workerId: string }
  | { type: 'close_worker'; workerId: string; code: number; reason: string };

export type RequestState = 'queued' | 'running' | 'cancelling';

interface Req {
  id: string;
  /** The name asked for (a model or an alias): the queue it waits in. */
  model: string;
  /** Set when `model` is an alias: its targets are what workers serve. */
  alias: ModelAlias | undefined;
  state: RequestState;
  /** Arrival order, for FIFO across the queues of several models. */
  seq: number;
  requeued: boolean;
  /** Whose turn it is in the fair queue: the client key, or the client address. */
  tenant: string;
  level: Level;
  /** The tenant's in-flight limit (a key's max_concurrent), 0 = none; counted while it holds a slot. */
  tenantLimit: number;
  holdsTenantSlot: boolean;
  /** The worker's slot group it runs in (backend-slots), if that worker has groups. */
  group: SlotGroup | undefined;
  /** While it runs: the model its worker runs it as (an alias's target, else its model). */
  runsAs: string;
  /** Its place in the model's queue while queued. */
  slot: Slot<Req> | undefined;
  /** A byte has reached the client: the request can no longer be retried elsewhere. */
  started: boolean;
  requeues: number;
  workerId?: string;
  queueDeadline: number;
  lastActivity: number;
  /** The one deadline armed for the request in its current state (queue, idle or grace). */
  deadline: Deadline<DeadlineKind> | undefined;
  /** What the edge read for routing (prompt prefix hashes, affinity key). */
  hints: RoutingHints | undefined;
  /** While queued: the worker holding its prompt, which may take it ahead of the queue. */
  preferred: string | undefined;
  /** Times a freed worker took another request ahead of it while it was the queue's head. */
  passes: number;
  /** Why it went to its current worker, and how many prompt blocks that worker had been sent. */
  route: RouteReason;
  matched: number;
}

export interface WorkerSpec {
  id: string;
  name: string;
  models: string[];
  maxConcurrent: number;
  /** With cancel-ack the slot is held until the worker confirms the backend stopped. */
  cancelAck?: boolean;
}

interface Worker extends WorkerSpec {
  inFlight: Set<string>;
  draining: boolean;
  drainDeadline?: number;
  /** Refused a request as busy: skip it until one of its requests finishes. */
  saturated: boolean;
  /** Listed in the open-slot index (eligible for new work). */
  open: boolean;
  lastSeen: number;
  lastDispatch: number;
  /** The most requests it has had in flight when one of them completed: the capacity it has shown,
   * as opposed to what it claimed. Selection weighs by this, so a worker that claims a huge
   * `max_concurrent` (or `*`) can't draw traffic away from workers that have done the work. */
  proven: number;
  /** Its backend is down (reported with backend-health, or learned from a failed call). */
  backendDown: boolean;
  backendReason: string;
  breaker: 'closed' | 'open' | 'half_open';
  /** Backend failures in a row while closed. */
  failures: number;
  cooldownMs: number;
  /** Ids it finished recently, to tell a late message from a foreign one. */
  recent: Map<string, true>;
  /** Its armed deadlines (ping, silence, drain), removed when it leaves. */
  timers: Partial<Record<'ping' | 'silence' | 'drain' | 'breaker', Deadline<DeadlineKind>>>;
  /** backend-slots: each model's share of the worker's slots (one group per backend), or undefined
   * when the whole worker is one pool. */
  groups: Map<string, SlotGroup> | undefined;
}

/** Slots a set of a worker's models share (one backend of a worker with several). */
interface SlotGroup {
  max: number;
  running: number;
}

/** What a worker says of its slot groups: these models share this many slots. */
export interface SlotGroupSpec {
  models: string[];
  maxConcurrent: number;
}

type ModelQueue = FairQueue<Req>;

/** Who a request is from and how urgent it is, for the fair queue. */
export interface SubmitOptions {
  tenant?: string;
  priority?: Priority;
  /** In-flight requests the tenant may have at once; more wait their turn in the queue (0 = none). */
  tenantLimit?: number;
  /** Prompt prefix hashes and affinity key, for cache-aware routing. */
  routing?: RoutingHints;
}

export type Ownership = 'active' | 'late' | 'foreign';

export interface WorkerView {
  id: string;
  name: string;
  models: string[];
  maxConcurrent: number;
  inFlight: number;
  draining: boolean;
  backendDown: boolean;
  breaker: 'closed' | 'open' | 'half_open';
  /** Capacity shown by completed work (see `Worker.proven`). */
  proven: number;
}

type DeadlineKind = 'queue' | 'idle' | 'grace' | 'ping' | 'silence' | 'drain' | 'breaker';

const WILDCARD = '*';
const MODELS_IN_ERRORS = 5;
const MAX_BREAKER_COOLDOWN_MS = 60_000;
const RECENT_IDS_PER_WORKER = 1024;
/** Times a queue's head may be passed over for requests that prefer the worker freeing a slot. */
export const MAX_PASSES = 8;
/** The waiters' key for requests that prefer no worker. */
const ANYWHERE = '';

export class Scheduler {
  readonly config: SchedulerConfig;
  private readonly requests = new Map<string, Req>();
  private readonly workers = new Map<string, Worker>();
  private readonly byModel = new Map<string, Set<Worker>>();
  private readonly wildcards = new Set<Worker>();
  // Workers with a free slot, per model: selection never walks busy workers, so a submit that has
  // to queue costs O(1) however many workers serve the model.
  private readonly openByModel = new Map<string, Set<Worker>>();
  private readonly openWildcards = new Set<Worker>();
  private readonly queues = new Map<string, ModelQueue>();
  /** Per-tenant in-flight counts and limits, for tenants with a limit only. */
  private readonly tenantInFlight = new Map<string, number>();
  private readonly tenantLimits = new Map<string, number>();
  private readonly isTenantBlocked = (tenant: string): boolean => this.tenantBlocked(tenant);
  /** A limited tenant dropped below its limit: idle workers may now take its queued requests. */
  private refillNeeded = false;
  private readonly deadlines = new DeadlineHeap<DeadlineKind>();
  private queued = 0;
  private seq = 0;
  private dispatchSeq = 0;
  private accepting = true;
  readonly aliases: ModelAliases;
  readonly router: Router<Worker>;
  /** Waiting requests with routing hints, by the worker they prefer (ANYWHERE: none). */
  private readonly waiters = new AffineWaiters<Req>((r, key) => r.state === 'queued' && (r.preferred ?? ANYWHERE) === key && this.requests.get(r.id) === r);

  constructor(config: Partial<SchedulerConfig> = {}, aliases: ModelAliases = new ModelAliases(), routing: Partial<RoutingConfig> = {}) {
    this.config = { ...DEFAULT_SCHEDULER_CONFIG, ...config };
    this.aliases = aliases;
    this.router = new Router<Worker>(routing, { inFlight: (w) => w.inFlight.size, capacity: shownCapacity });
  }

  // ---------- views ----------

  get queueDepth(): number {
    return this.queued;
  }

  /** Requests waiting, per model (only models with a queue). */
  queueDepthByModel(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [model, q] of this.queues) out.set(model, q.length);
    return out;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  /** Models some connected worker serves, sorted, without the wildcard. */
  models(): string[] {
    return [...this.byModel.keys()].sort();
  }

  /** A few model names for an error message, "and N more" for the rest: the 404 for an unknown
   * model is unauthenticated, so it must stay small however many models workers advertise. */
  private someModels(): string {
    const total = this.byModel.size;
    if (total === 0) return 'none (no worker is connected)';
    const shown: string[] = [];
    for (const m of this.byModel.keys()) {
      if (shown.length === MODELS_IN_ERRORS) break;
      shown.push(m);
    }
    shown.sort();
    return total > shown.length ? `${shown.join(', ')} and ${total - shown.length} more (GET /v1/models lists them)` : shown.join(', ');
  }

  /** Whether a request for `model` would find a worker: one lists it (for an alias: any of its
   * targets), or one serves `*`. */
  serves(model: string): boolean {
    if (this.wildcards.size > 0) return true;
    const alias = this.aliases.get(model);
    if (!alias) return this.byModel.has(model);
    for (const t of alias.targets) if (this.byModel.has(t)) return true;
    return false;
  }

  /** The model_not_found message, for a request and for GET /v1/models/{id} alike. */
  notServedMessage(model: string): string {
    const alias = this.aliases.get(model);
    if (alias) {
      const targets = alias.targets.length > MODELS_IN_ERRORS ? `${alias.targets.slice(0, MODELS_IN_ERRORS).join(', ')} and ${alias.targets.length - MODELS_IN_ERRORS} more` : alias.targets.join(', ');
      return `The model '${model}' is an alias of ${targets}; no connected worker serves any of them. Available models: ${this.someModels()}.`;
    }
    return `The model '${model}' is not served by any connected worker. Available models: ${this.someModels()}.`;
  }

  workerList(): WorkerView[] {
    return [...this.workers.values()].map((w) => ({
      id: w.id,
      name: w.name,
      models: w.models,
      maxConcurrent: w.maxConcurrent,
      inFlight: w.inFlight.size,
      draining: w.draining,
      backendDown: w.backendDown,
      breaker: w.breaker,
      proven: w.proven,
    }));
  }

  hasWorker(id: string): boolean {
    return this.workers.has(id);
  }

  requestState(id: string): RequestState | undefined {
    return this.requests.get(id)?.state;
  }

  /** A queued request's approximate place in its model's queue (1 = next), else undefined. */
  queuePosition(id: string): number | undefined {
    const r = this.requests.get(id);
    if (!r || r.state !== 'queued' || !r.slot) return undefined;
    return this.queues.get(r.model)?.position(r.slot);
  }

  workerOf(requestId: string): string | undefined {
    return this.requests.get(requestId)?.workerId;
  }

  /** Why the request went to its current worker (see routing.ts). */
  routeOf(requestId: string): RouteReason | undefined {
    return this.requests.get(requestId)?.route;
  }

  /** Prompt blocks its worker had been sent before (0 = none known). */
  matchedBlocksOf(requestId: string): number {
    return this.requests.get(requestId)?.matched ?? 0;
  }

  /** Earliest moment `tick` has work to do. */
  nextDeadline(): number | undefined {
    return this.deadlines.peek()?.at;
  }

  // ---------- requests ----------

  submit(id: string, model: string, now: number, opts: SubmitOptions = {}): Command[] {
    if (!this.accepting) return [fail(id, 'shutting_down', 'The relay is shutting down; retry shortly.')];
    if (this.requests.has(id)) throw new Error(`duplicate request id ${id}`);
    const alias = this.aliases.size > 0 ? this.aliases.get(model) : undefined;
    if (alias ? !this.serves(model) : !this.byModel.has(model) && this.wildcards.size === 0) {
      return [fail(id, 'model_not_found', this.notServedMessage(model))];
    }
    const req: Req = {
      id,
      model,
      alias,
      state: 'queued',
      seq: ++this.seq,
      requeued: false,
      tenant: opts.tenant ?? '',
      level: levelOf(opts.priority ?? 'normal'),
      tenantLimit: opts.tenantLimit ?? 0,
      holdsTenantSlot: false,
      group: undefined,
      runsAs: '',
      slot: undefined,
      started: false,
      requeues: 0,
      queueDeadline: 0,
      lastActivity: now,
      deadline: undefined,
      hints: opts.routing,
      preferred: undefined,
      passes: 0,
      route: 'least_loaded',
      matched: 0,
    };
    if (req.tenantLimit > 0) this.tenantLimits.set(req.tenant, req.tenantLimit);
    const w = this.tenantBlocked(req.tenant) ? undefined : this.place(req);
    if (w) {
      this.requests.set(id, req);
      return [this.assign(req, w, now)];
    }
    // Every worker for the model is out of rotation for its backend: say why now, rather than
    // let the client wait out the queue timeout for a worker that can't serve it.
    const sick = this.unhealthyReason(req);
    if (sick !== undefined) return [fail(id, 'backend_unreachable', `No worker serving '${model}' has a working backend: ${sick}`)];
    if (this.config.maxQueueLen > 0 && this.queued >= this.config.maxQueueLen) {
      return [fail(id, 'queue_full', `The request queue is full (${this.config.maxQueueLen} waiting); retry shortly.`)];
    }
    this.requests.set(id, req);
    this.enqueue(req, now, false);
    return [];
  }

  /** The first byte of this request reached its client: from now on it can't be retried. */
  markStarted(id: string): void {
    const r = this.requests.get(id);
    if (r) r.started = true;
  }

  /** A chunk arrived: push the idle deadline forward (only a timestamp write on this hot path). */
  touch(id: string, now: number): void {
    const r = this.requests.get(id);
    if (r) r.lastActivity = now;
  }

  /** The client went away, or the edge gave up on the request for another reason. */
  cancel(id: string, reason: CancelReason, now: number): Command[] {
    const r = this.requests.get(id);
    if (!r) return [];
    switch (r.state) {
      case 'queued':
        this.removeQueued(r);
        return [];
      case 'running': {
        const cmds: Command[] = [{ type: 'cancel', requestId: id, workerId: r.workerId!, reason }];
        return cmds.concat(this.stopRunning(r, now));
      }
      case 'cancelling':
        return [];
      default:
        return assertNever(r.state);
    }
  }

  /** Tell whether `workerId` may send messages about `requestId`. */
  ownership(workerId: string, requestId: string): Ownership {
    const r = this.requests.get(requestId);
    if (r && r.workerId === workerId) return r.state === 'running' ? 'active' : 'late';
    return this.workers.get(workerId)?.recent.has(requestId) ? 'late' : 'foreign';
  }

  /** The worker finished (or confirmed the cancel of) one of its requests. `outcome` says whether
   * the backend answered (ok), failed before answering (backend_failure), or neither (a cancel). */
  complete(id: string, workerId: string, now: number, outcome: Outcome = 'ok'): Command[] {
    const r = this.requests.get(id);
    if (!r || r.workerId !== workerId) return [];
    const w = this.workers.get(workerId);
    const running = r.state === 'running';
    // Only work that succeeded shows capacity: failing fast must never look like being idle.
    if (w && running && outcome === 'ok' && w.inFlight.size > w.proven) w.proven = w.inFlight.size;
    this.finish(r);
    if (!w) return [];
    w.saturated = false;
    if (running && outcome === 'ok') this.breakerSuccess(w);
    else if (running && outcome === 'backend_failure') this.breakerFailure(w, now);
    this.sync(w);
    return this.fill(w, now);
  }

  /**
   * The worker's backend could not take the request before any byte (unreachable, reset, loading):
   * not an answer. It counts against the worker's breaker (a worker that tracks its backend's health
   * also reports it down, separately) and the request goes to another worker, this one only if no
   * other can take it now. Only when no healthy worker serves the model does the client get the
   * error, with the backend's reason.
   */
  backendUnavailable(id: string, workerId: string, reason: string, now: number): Command[] {
    const r = this.requests.get(id);
    if (!r || r.workerId !== workerId || r.state !== 'running') return [];
    const w = this.workers.get(workerId);
    // A failure its worker explained by reporting the backend down is the health report's to
    // handle; the breaker is for failures nobody explained.
    if (w && !w.backendDown) this.breakerFailure(w, now);
    let cmds: Command[];
    if (r.started) cmds = this.finishWithError(r, 'backend_error', reason);
    else if (!this.hasHealthyWorker(r, workerId)) {
      this.finish(r);
      cmds = [fail(r.id, 'backend_unreachable', `${reason.replace(/\.+$/, '')}. No other worker serving '${r.model}' has a working backend.`)];
    } else cmds = this.requeue(r, now, workerId);
    // The slot it held is free (unless the request came straight back): a worker still in rotation
    // takes the next waiting request, as after any completion.
    return w ? cmds.concat(this.fill(w, now)) : cmds;
  }

  /** backend-health: the worker says its backend went down or came back. */
  backendState(workerId: string, up: boolean, reason: string, now: number): Command[] {
    const w = this.workers.get(workerId);
    if (!w || w.backendDown === !up) return [];
    // Back up: what failed while it was down says nothing about it now (an open breaker would keep
    // a healthy worker out for its cool-down, and fail requests no other worker can take).
    if (up) this.breakerSuccess(w);
    this.setBackend(w, !up, reason);
    return up ? this.fill(w, now) : [];
  }

  /**
   * The worker could not serve the request (request-error extension): busy or draining refusals and
   * backend failures before any byte was sent are retried elsewhere; anything else fails the request.
   */
  requestFailed(id: string, workerId: string, retryable: boolean, message: string, now: number): Command[] {
    const r = this.requests.get(id);
    if (!r || r.workerId !== workerId || r.state !== 'running') return [];
    const w = this.workers.get(workerId);
    if (w && retryable && !r.started) {
      w.saturated = true;
      this.sync(w);
    }
    if (w && !retryable && !r.started) this.breakerFailure(w, now);
    // A refusal is "not now", not a failure: it spends none of --max-requeues (a worker with several
    // backends refuses whenever the one a model needs is full), and --queue-timeout still bounds the
    // wait, counted from when the request first had to wait.
    const cmds = retryable && !r.started ? this.requeue(r, now, undefined, true) : this.finishWithError(r, 'backend_error', message);
    return w ? cmds.concat(this.fill(w, now)) : cmds;
  }

  // ---------- workers ----------

  registerWorker(spec: WorkerSpec, now: number): Command[] {
    if (this.workers.has(spec.id)) throw new Error(`duplicate worker id ${spec.id}`);
    // Fields listed one by one (no spread) so every worker shares one V8 hidden class.
    const w: Worker = {
      id: spec.id,
      name: spec.name,
      cancelAck: spec.cancelAck ?? false,
      models: [...spec.models],
      maxConcurrent: Math.max(1, spec.maxConcurrent),
      inFlight: new Set(),
      draining: false,
      saturated: false,
      open: false,
      lastSeen: now,
      lastDispatch: 0,
      proven: 0,
      backendDown: false,
      backendReason: '',
      breaker: 'closed',
      failures: 0,
      cooldownMs: this.config.breakerCooldownMs,
      recent: new Map(),
      timers: {},
      groups: undefined,
    };
    this.workers.set(w.id, w);
    this.index(w);
    this.sync(w);
    w.timers.ping = this.deadlines.push({ at: now + this.config.heartbeatIntervalMs, kind: 'ping', id: w.id });
    w.timers.silence = this.deadlines.push({ at: now + this.config.heartbeatTimeoutMs, kind: 'silence', id: w.id });
    return this.fill(w, now);
  }

  updateModels(workerId: string, models: string[], now: number): Command[] {
    const w = this.workers.get(workerId);
    if (!w) return [];
    this.setOpen(w, false);
    this.unindex(w);
    w.models = [...models];
    this.index(w);
    // A `*` worker takes any model: its slots are one pool (see setSlotGroups).
    if (this.wildcards.has(w)) w.groups = undefined;
    this.sync(w);
    return this.fill(w, now);
  }

  /** backend-slots: which of the worker's models share how many slots (empty: one pool). Requests
   * running now are counted in their model's new group. */
  setSlotGroups(workerId: string, specs: SlotGroupSpec[], now: number): Command[] {
    const w = this.workers.get(workerId);
    if (!w) return [];
    this.setOpen(w, false);
    const groups = new Map<string, SlotGroup>();
    for (const spec of specs) {
      const g: SlotGroup = { max: Math.max(1, Math.min(spec.maxConcurrent, w.maxConcurrent)), running: 0 };
      for (const m of spec.models) if (m !== WILDCARD && !groups.has(m)) groups.set(m, g);
    }
    // A `*` worker takes any model: its slots stay one pool.
    w.groups = groups.size > 0 && !this.wildcards.has(w) ? groups : undefined;
    for (const id of w.inFlight) {
      const r = this.requests.get(id);
      if (!r) continue;
      r.group = w.groups?.get(r.runsAs);
      if (r.group) r.group.running++;
    }
    this.sync(w);
    return this.fill(w, now);
  }

  /** A pong reports the worker's own count of running calls: a worker that refused work as busy is
   * usable again once it reports a free slot. */
  workerLoad(workerId: string, load: number, now: number): Command[] {
    const w = this.workers.get(workerId);
    if (!w || !w.saturated || load >= w.maxConcurrent) return [];
    w.saturated = false;
    this.sync(w);
    return this.fill(w, now);
  }

  /** Any inbound frame proves the worker alive. */
  workerSeen(workerId: string, now: number): void {
    const w = this.workers.get(workerId);
    if (w) w.lastSeen = now;
  }

  /** Stop routing to the worker; it keeps its in-flight work until `deadline` (if given). */
  drainWorker(workerId: string, now: number, drainTimeoutMs?: number): Command[] {
    const w = this.workers.get(workerId);
    if (!w || w.draining) return [];
    w.draining = true;
    this.sync(w);
    if (drainTimeoutMs !== undefined && drainTimeoutMs > 0) {
      w.drainDeadline = now + drainTimeoutMs;
      w.timers.drain = this.deadlines.push({ at: w.drainDeadline, kind: 'drain', id: w.id });
    }
    return [];
  }

  isDrained(workerId: string): boolean {
    const w = this.workers.get(workerId);
    return !!w && w.draining && w.inFlight.size === 0;
  }

  /** The worker's connection is gone: requeue what can be retried, fail the rest. */
  workerLost(workerId: string, now: number): Command[] {
    const w = this.workers.get(workerId);
    if (!w) return [];
    this.workers.delete(workerId);
    this.forgetRoutes(w);
    for (const t of Object.values(w.timers)) this.deadlines.remove(t);
    this.setOpen(w, false);
    this.unindex(w);
    let cmds: Command[] = [];
    for (const id of w.inFlight) {
      const r = this.requests.get(id)!;
      if (r.state === 'cancelling') {
        this.release(r); // its tenant's slot (the worker's are all dropped below)
        this.forget(r);
        continue;
      }
      if (r.started) {
        cmds = cmds.concat(this.finishWithError(r, 'worker_lost', `The worker '${w.name}' serving this request disconnected mid-response.`));
      } else {
        cmds = cmds.concat(this.requeue(r, now));
      }
    }
    w.inFlight.clear();
    return this.refillNeeded ? cmds.concat(this.refill(now)) : cmds;
  }

  // ---------- shutdown and time ----------

  /** Stop intake; everything still waiting in the queue fails now. */
  stopAccepting(): Command[] {
    this.accepting = false;
    const cmds: Command[] = [];
    for (const r of [...this.requests.values()]) {
      if (r.state !== 'queued') continue;
      this.removeQueued(r);
      cmds.push(fail(r.id, 'shutting_down', 'The relay is shutting down; retry shortly.'));
    }
    return cmds;
  }

  get inFlightCount(): number {
    let n = 0;
    for (const w of this.workers.values()) n += w.inFlight.size;
    return n;
  }

  tick(now: number): Command[] {
    const cmds: Command[] = [];
    for (let d = this.deadlines.peek(); d && d.at <= now; d = this.deadlines.peek()) {
      this.deadlines.pop();
      switch (d.kind) {
        case 'queue': {
          const r = this.requests.get(d.id);
          if (!r || r.state !== 'queued' || r.queueDeadline > now) break;
          this.removeQueued(r);
          const secs = seconds(this.config.queueTimeoutMs);
          cmds.push(fail(r.id, 'queue_timeout', `No worker for '${r.model}' had capacity within ${secs}s; retry shortly.`));
          break;
        }
        case 'idle': {
          const r = this.requests.get(d.id);
          if (!r || r.state !== 'running') break;
          const at = r.lastActivity + this.config.requestTimeoutMs;
          if (at > now) {
            r.deadline = this.deadlines.push({ at, kind: 'idle', id: r.id });
            break;
          }
          const secs = seconds(this.config.requestTimeoutMs);
          const what = r.started ? 'sent nothing more' : 'did not start answering';
          cmds.push({ type: 'cancel', requestId: r.id, workerId: r.workerId!, reason: 'timeout' });
          cmds.push(fail(r.id, 'request_timeout', `The worker ${what} within ${secs}s.`));
          cmds.push(...this.stopRunning(r, now));
          break;
        }
        case 'grace': {
          const r = this.requests.get(d.id);
          if (!r || r.state !== 'cancelling') break;
          const w = this.workers.get(r.workerId!);
          this.finish(r);
          if (w) cmds.push(...this.fill(w, now));
          break;
        }
        case 'ping': {
          const w = this.workers.get(d.id);
          if (!w) break;
          cmds.push({ type: 'ping', workerId: d.id });
          w.timers.ping = this.deadlines.push({ at: now + this.config.heartbeatIntervalMs, kind: 'ping', id: d.id });
          break;
        }
        case 'silence': {
          const w = this.workers.get(d.id);
          if (!w) break;
          const at = w.lastSeen + this.config.heartbeatTimeoutMs;
          if (at > now) {
            w.timers.silence = this.deadlines.push({ at, kind: 'silence', id: w.id });
            break;
          }
          const secs = seconds(this.config.heartbeatTimeoutMs);
          cmds.push({ type: 'close_worker', workerId: w.id, code: 1000, reason: `heartbeat timeout (${secs}s silent)` });
          cmds.push(...this.workerLost(w.id, now));
          break;
        }
        case 'drain': {
          const w = this.workers.get(d.id);
          if (!w || !w.draining || w.drainDeadline === undefined || w.drainDeadline > now) break;
          // Cancels first: closing the worker ends the channel they travel on.
          for (const id of w.inFlight) {
            const r = this.requests.get(id)!;
            if (r.state === 'running') cmds.push({ type: 'cancel', requestId: id, workerId: w.id, reason: 'graceful_shutdown' });
          }
          cmds.push({ type: 'close_worker', workerId: w.id, code: 1000, reason: 'drain timeout' });
          cmds.push(...this.workerLost(w.id, now));
          break;
        }
        case 'breaker': {
          const w = this.workers.get(d.id);
          if (!w || w.breaker !== 'open') break;
          w.timers.breaker = undefined;
          w.breaker = 'half_open';
          this.sync(w);
          cmds.push(...this.fill(w, now));
          break;
        }
        default:
          assertNever(d.kind);
      }
    }
    return cmds;
  }

  /** Throws if the bookkeeping drifted; tests call it after each step. */
  checkInvariants(): void {
    let queued = 0;
    for (const r of this.requests.values()) {
      if (r.state === 'queued') {
        queued++;
        if (r.workerId !== undefined) throw new Error(`queued ${r.id} has a worker`);
      } else {
        const w = this.workers.get(r.workerId ?? '');
        if (!w || !w.inFlight.has(r.id)) throw new Error(`${r.state} ${r.id} not in flight on a connected worker`);
      }
    }
    if (queued !== this.queued) throw new Error(`queue depth ${this.queued} != ${queued} queued requests`);
    for (const w of this.workers.values()) {
      if (w.inFlight.size > w.maxConcurrent) throw new Error(`worker ${w.id} over capacity`);
      if (w.open !== this.eligible(w)) throw new Error(`worker ${w.id} open-slot index is stale`);
      for (const id of w.inFlight) if (this.requests.get(id)?.workerId !== w.id) throw new Error(`worker ${w.id} holds foreign ${id}`);
    }
    let inQueues = 0;
    for (const q of this.queues.values()) {
      if (q.length <= 0) throw new Error('empty queue kept');
      inQueues += q.length;
    }
    if (inQueues !== this.queued) throw new Error(`queues hold ${inQueues} live slots, ${this.queued} requests queued`);
    const held = new Map<string, number>();
    for (const r of this.requests.values()) {
      if (r.holdsTenantSlot !== (r.tenantLimit > 0 && r.state !== 'queued')) throw new Error(`${r.id} tenant slot bookkeeping`);
      if (r.holdsTenantSlot) held.set(r.tenant, (held.get(r.tenant) ?? 0) + 1);
    }
    for (const [t, n] of this.tenantInFlight) if (held.get(t) !== n) throw new Error(`tenant ${t} in flight ${n}, holding ${held.get(t) ?? 0}`);
    // The header's invariant: nothing that may run waits while a worker that could serve it has a
    // free slot (a tenant at its in-flight limit waits by design; a requeued request never does).
    for (const r of this.requests.values()) {
      if (r.state !== 'queued' || (!r.requeued && this.tenantBlocked(r.tenant))) continue;
      if (this.openWildcards.size > 0) throw new Error(`${r.id} for '${r.model}' waits while a '*' worker has a free slot`);
      for (const m of servedAs(r)) if (this.openByModel.has(m)) throw new Error(`${r.id} for '${r.model}' waits while a worker serving '${m}' has a free slot`);
    }
    // Slot groups count exactly the requests running in them.
    for (const w of this.workers.values()) {
      if (!w.groups) continue;
      const counted = new Map<SlotGroup, number>();
      for (const id of w.inFlight) {
        const g = this.requests.get(id)?.group;
        if (g) counted.set(g, (counted.get(g) ?? 0) + 1);
      }
      for (const g of new Set(w.groups.values())) if (g.running !== (counted.get(g) ?? 0)) throw new Error(`worker ${w.id}: a slot group counts ${g.running} running, ${counted.get(g) ?? 0} hold it`);
    }
    // Routing remembers only connected workers; only a waiting request prefers one.
    for (const id of this.router.index.workerIds()) if (!this.workers.has(id)) throw new Error(`routing index still names departed worker ${id}`);
    for (const r of this.requests.values()) {
      if (r.preferred === undefined) continue;
      if (r.state !== 'queued') throw new Error(`${r.state} ${r.id} still prefers ${r.preferred}`);
      if (!this.workers.has(r.preferred)) throw new Error(`queued ${r.id} prefers departed worker ${r.preferred}`);
    }
    // Only live requests hold deadlines (workers hold at most four each).
    if (this.deadlines.size > this.requests.size + 4 * this.workers.size) {
      throw new Error(`deadline heap holds ${this.deadlines.size} entries for ${this.requests.size} requests`);
    }
  }

  // ---------- internals ----------

  private eligible(w: Worker): boolean {
    if (w.draining || w.saturated || w.backendDown || w.breaker === 'open') return false;
    // Half open: one probe request at a time decides whether the worker is back.
    return w.inFlight.size < (w.breaker === 'half_open' ? 1 : w.maxConcurrent);
  }

  private tenantBlocked(tenant: string): boolean {
    const limit = this.tenantLimits.get(tenant);
    return limit !== undefined && (this.tenantInFlight.get(tenant) ?? 0) >= limit;
  }

  /** After a limited tenant dropped below its limit: every worker with room may now take its work
   * (O(workers), only on such a transition). */
  private refill(now: number): Command[] {
    if (!this.refillNeeded) return [];
    this.refillNeeded = false;
    const cmds: Command[] = [];
    for (const w of this.workers.values()) if (w.open) cmds.push(...this.fillOnly(w, now));
    return cmds;
  }

  private setBackend(w: Worker, down: boolean, reason: string): void {
    w.backendDown = down;
    w.backendReason = down ? reason : '';
    this.sync(w);
  }

  /** A worker other than `exclude` that could serve the request but for being busy (draining, down
   * or tripped ones can't). */
  private hasHealthyWorker(r: Req, exclude: string): boolean {
    const healthy = (w: Worker): boolean => w.id !== exclude && !w.draining && !isSick(w);
    for (const m of servedAs(r)) for (const w of this.byModel.get(m) ?? []) if (healthy(w)) return true;
    for (const w of this.wildcards) if (healthy(w)) return true;
    return false;
  }

  /** Why no worker can serve the request, when every one of its non-draining workers is sick; else
   * undefined. Stops at the first healthy worker, so it costs O(1) while any is healthy. */
  private unhealthyReason(r: Req): string | undefined {
    let sick: Worker | undefined;
    for (const m of servedAs(r)) {
      const exact = this.byModel.get(m);
      if (!exact) continue;
      for (const w of exact) {
        if (w.draining) continue;
        if (!isSick(w)) return undefined;
        sick ??= w;
      }
    }
    for (const w of this.wildcards) {
      if (w.draining) continue;
      if (!isSick(w)) return undefined;
      sick ??= w;
    }
    if (!sick) return undefined;
    return sick.backendDown ? `${sick.name}: ${sick.backendReason.replace(/\.+$/, '')}.` : `${sick.name}: its last requests failed; it is skipped for a few seconds.`;
  }

  private breakerSuccess(w: Worker): void {
    w.failures = 0;
    if (w.breaker === 'closed') return;
    w.breaker = 'closed';
    w.cooldownMs = this.config.breakerCooldownMs;
    this.deadlines.remove(w.timers.breaker);
    w.timers.breaker = undefined;
  }

  private breakerFailure(w: Worker, now: number): void {
    if (this.config.breakerFailures <= 0) return;
    if (w.breaker === 'half_open') return this.openBreaker(w, now, Math.min(w.cooldownMs * 2, MAX_BREAKER_COOLDOWN_MS));
    if (++w.failures >= this.config.breakerFailures) this.openBreaker(w, now, w.cooldownMs);
  }

  private openBreaker(w: Worker, now: number, cooldownMs: number): void {
    w.breaker = 'open';
    w.failures = 0;
    w.cooldownMs = cooldownMs;
    this.deadlines.remove(w.timers.breaker);
    w.timers.breaker = this.deadlines.push({ at: now + cooldownMs, kind: 'breaker', id: w.id });
    this.sync(w);
  }

  /** Lowest utilisation of shown capacity wins; ties go to the least recently dispatched
   * (round-robin). A worker stays eligible up to its claimed capacity, so no slot is wasted. For an
   * alias, the workers of all its targets compete alike. */
  private pickWorker(r: Req, exclude?: string): Worker | undefined {
    let best: Worker | undefined;
    const consider = (w: Worker): void => {
      if (!this.eligible(w) || w.id === exclude) return;
      if (!best) {
        best = w;
        return;
      }
      const a = w.inFlight.size * shownCapacity(best);
      const b = best.inFlight.size * shownCapacity(w);
      if (a < b || (a === b && w.lastDispatch < best.lastDispatch)) best = w;
    };
    if (r.alias) {
      for (const t of r.alias.targets) {
        const open = this.openByModel.get(t);
        if (open) for (const w of open) consider(w);
      }
    } else {
      const exact = this.openByModel.get(r.model);
      if (exact) for (const w of exact) consider(w);
    }
    for (const w of this.openWildcards) consider(w);
    return best;
  }

  /** Where the request goes now: the least-loaded eligible worker, or the routing rule's choice
   * among the eligible ones (undefined when none has a free slot). */
  private place(r: Req, exclude?: string): Worker | undefined {
    const least = this.pickWorker(r, exclude);
    if (!least || !r.hints || !this.router.active) {
      r.route = 'least_loaded';
      r.matched = 0;
      return least;
    }
    const route = this.router.choose(r.hints, least, (id) => {
      const w = this.workers.get(id);
      return w && w.open && w.id !== exclude && this.servesRequest(w, r, true) ? w : undefined;
    });
    r.route = route.reason;
    r.matched = route.matched;
    return route.worker;
  }

  /** `w` serves the request; with `now`, also has a slot for it now in that model's slot group. */
  private servesRequest(w: Worker, r: Req, now = false): boolean {
    if (this.wildcards.has(w)) return true;
    for (const m of servedAs(r)) if (this.byModel.get(m)?.has(w) && (!now || this.roomFor(w, m))) return true;
    return false;
  }

  /** A worker left: the index forgets it, and requests waiting for it wait for anyone. */
  private forgetRoutes(w: Worker): void {
    this.router.forgetWorker(w.id);
    if (!this.waiters.has(w.id)) return;
    this.waiters.forget(w.id);
    for (const r of this.requests.values()) {
      if (r.preferred !== w.id) continue;
      r.preferred = undefined;
      this.waiters.add(ANYWHERE, r);
    }
  }

  /** The alias target `w` serves the request as: the first it lists that has a free slot on `w`
   * (a `*` worker: the first). */
  private targetFor(alias: ModelAlias, w: Worker): string {
    let served: string | undefined;
    for (const t of alias.targets) {
      if (!this.byModel.get(t)?.has(w)) continue;
      if (this.roomFor(w, t)) return t;
      served ??= t;
    }
    return served ?? alias.targets[0]!;
  }

  /** Whether `w`'s slot group for `model` has a free slot (no groups: the worker's own limit decides). */
  private roomFor(w: Worker, model: string): boolean {
    const g = w.groups?.get(model);
    return g === undefined || g.running < g.max;
  }

  private assign(r: Req, w: Worker, now: number): Command {
    if (r.tenantLimit > 0 && !r.holdsTenantSlot) {
      r.holdsTenantSlot = true;
      this.tenantInFlight.set(r.tenant, (this.tenantInFlight.get(r.tenant) ?? 0) + 1);
    }
    r.state = 'running';
    r.workerId = w.id;
    r.lastActivity = now;
    const target = r.alias ? this.targetFor(r.alias, w) : undefined;
    r.runsAs = target ?? r.model;
    r.group = w.groups?.get(r.runsAs);
    if (r.group) r.group.running++;
    w.inFlight.add(r.id);
    this.sync(w);
    w.lastDispatch = ++this.dispatchSeq;
    this.deadlines.remove(r.deadline);
    r.deadline = this.config.requestTimeoutMs > 0 ? this.deadlines.push({ at: now + this.config.requestTimeoutMs, kind: 'idle', id: r.id }) : undefined;
    r.preferred = undefined;
    this.router.count(r.route);
    this.router.learn(r.hints, w.id);
    if (target !== undefined) return { type: 'dispatch', requestId: r.id, workerId: w.id, target };
    return { type: 'dispatch', requestId: r.id, workerId: w.id };
  }

  /** Give a worker with free slots the next waiting requests it can serve (and, after a tenant
   * left its limit, every other worker too). */
  private fill(w: Worker, now: number): Command[] {
    const cmds = this.fillOnly(w, now);
    return this.refillNeeded ? cmds.concat(this.refill(now)) : cmds;
  }

  private fillOnly(w: Worker, now: number): Command[] {
    const cmds: Command[] = [];
    while (this.queued > 0 && this.eligible(w)) {
      const q = this.bestQueueFor(w, now);
      if (!q) break;
      let r = this.takeAffine(w, q, now);
      if (!r) {
        r = q.shift(now)!.item;
        this.dequeued(r, q);
      }
      this.routedFromQueue(r, w);
      cmds.push(this.assign(r, w, now));
    }
    return cmds;
  }

  /** When the head of `q` (the queue `w` would serve next) would rather wait for another worker: a
   * waiting request that prefers `w`, or else one that prefers no worker (a first turn, placed
   * anywhere at no cost), taken ahead of it. Only past a head that has been passed fewer than
   * MAX_PASSES times and was not requeued, and only a request of the head's priority band or above
   * whose tenant may run. */
  private takeAffine(w: Worker, q: ModelQueue, now: number): Req | undefined {
    const head = q.peek(now)!.item;
    const level = q.peekLevel;
    if (head.preferred === undefined || head.preferred === w.id || level < 0 || head.passes >= MAX_PASSES) return undefined;
    const accept = (c: Req): boolean => c.slot!.level <= level && !this.tenantBlocked(c.tenant) && this.servesRequest(w, c, true);
    const r = this.waiters.take(w.id, accept) ?? this.waiters.take(ANYWHERE, accept);
    if (!r) return undefined;
    head.passes++;
    const rq = this.queues.get(r.model)!;
    rq.remove(r.slot!);
    this.dequeued(r, rq);
    return r;
  }

  /** A queued request goes to `w`: the worker it waited for (queued_affinity), or not (queued). */
  private routedFromQueue(r: Req, w: Worker): void {
    const affine = r.preferred !== undefined && r.preferred === w.id;
    r.route = affine ? 'queued_affinity' : 'queued';
    r.matched = affine ? (this.router.index.longest(r.hints?.prefix ?? [], (id) => id === w.id)?.blocks ?? 0) : 0;
  }

  /** Among the worker's models (and the aliases listing them), the queue whose next request goes
   * first: requeued ones, then the higher band, then the older request. */
  private bestQueueFor(w: Worker, now: number): ModelQueue | undefined {
    let best: ModelQueue | undefined;
    let bestHead: Slot<Req> | undefined;
    let bestLevel = 0;
    const consider = (q: ModelQueue | undefined): void => {
      if (!q) return;
      const head = q.peek(now);
      if (!head) return;
      if (!bestHead || q.peekLevel < bestLevel || (q.peekLevel === bestLevel && head.seq < bestHead.seq)) {
        best = q;
        bestHead = head;
        bestLevel = q.peekLevel;
      }
    };
    if (this.wildcards.has(w)) for (const q of this.queues.values()) consider(q);
    else {
      for (const m of w.models) if (this.roomFor(w, m)) consider(this.queues.get(m));
      if (this.aliases.size > 0) for (const m of w.models) if (this.roomFor(w, m)) for (const a of this.aliases.listing(m)) consider(this.queues.get(a.name));
    }
    return best;
  }

  /** `keepDeadline`: a refused request keeps the queue deadline it first had (or gets one from now). */
  private enqueue(r: Req, now: number, front: boolean, keepDeadline = false): void {
    let q = this.queues.get(r.model);
    if (!q) {
      q = new FairQueue<Req>(this.config.priorityAgingMs, this.isTenantBlocked);
      this.queues.set(r.model, q);
    }
    r.state = 'queued';
    r.workerId = undefined;
    r.requeued = front;
    r.slot = q.push(r, r.seq, r.tenant, r.level, now, front);
    this.queued++;
    // A fresh arrival waits for the worker holding its prompt too (a requeued one goes first anyway).
    r.preferred = undefined;
    if (!front && r.hints && this.router.active) {
      r.preferred = this.router.preferred(r.hints, (id) => {
        const w = this.workers.get(id);
        return w !== undefined && this.servesRequest(w, r);
      });
      this.waiters.add(r.preferred ?? ANYWHERE, r);
    }
    if (this.config.queueTimeoutMs > 0) {
      if (!keepDeadline || r.queueDeadline === 0) r.queueDeadline = now + this.config.queueTimeoutMs;
      this.deadlines.remove(r.deadline);
      r.deadline = this.deadlines.push({ at: r.queueDeadline, kind: 'queue', id: r.id });
    }
  }

  /** Bookkeeping once `r` left its queue (the queue already took it off). */
  private dequeued(r: Req, q: ModelQueue): void {
    r.slot = undefined;
    this.queued--;
    if (q.length === 0) this.queues.delete(r.model);
  }

  /** Leaves a lazily-deleted slot in the queue; it is skipped when reached. */
  private removeQueued(r: Req): void {
    const q = this.queues.get(r.model)!;
    this.forget(r);
    if (r.slot) q.remove(r.slot);
    r.state = 'cancelling'; // anything but 'queued'
    this.dequeued(r, q);
  }

  /** Back to the front of its queue, or straight to a free worker (another than `avoid` if any). */
  private requeue(r: Req, now: number, avoid?: string, refused = false): Command[] {
    this.release(r);
    if (!refused && r.requeues >= this.config.maxRequeues) {
      this.forget(r);
      return [fail(r.id, 'requeue_exhausted', `The request failed on ${r.requeues + 1} workers in a row; giving up.`)];
    }
    if (!refused) r.requeues++;
    const w = this.place(r, avoid) ?? this.place(r);
    if (w) return [this.assign(r, w, now)];
    if (!this.accepting) {
      // Shutting down: every worker drains, so waiting would only stretch the shutdown.
      this.forget(r);
      return [fail(r.id, 'shutting_down', 'The relay is shutting down; retry shortly.')];
    }
    this.enqueue(r, now, true, refused);
    return [];
  }

  /** A running request stops for the client: free the slot now, or once a cancel-ack worker confirms. */
  private stopRunning(r: Req, now: number): Command[] {
    const w = this.workers.get(r.workerId!)!;
    if (w.cancelAck) {
      r.state = 'cancelling';
      this.deadlines.remove(r.deadline);
      r.deadline = this.deadlines.push({ at: now + this.config.cancelGraceMs, kind: 'grace', id: r.id });
      return [];
    }
    this.finish(r);
    return this.fill(w, now);
  }

  private finishWithError(r: Req, code: ErrorCode, message: string): Command[] {
    this.finish(r);
    return [fail(r.id, code, message)];
  }

  /** The request leaves the scheduler; its worker remembers the id so late messages stay quiet. */
  private finish(r: Req): void {
    this.release(r);
    this.forget(r);
  }

  /** The request is gone for good: drop it and the deadline it had armed. */
  private forget(r: Req): void {
    this.requests.delete(r.id);
    this.deadlines.remove(r.deadline);
    r.deadline = undefined;
  }

  private release(r: Req): void {
    if (r.holdsTenantSlot) {
      r.holdsTenantSlot = false;
      const n = (this.tenantInFlight.get(r.tenant) ?? 1) - 1;
      if (n <= 0) this.tenantInFlight.delete(r.tenant);
      else this.tenantInFlight.set(r.tenant, n);
      if (this.queued > 0 && n + 1 === this.tenantLimits.get(r.tenant)) this.refillNeeded = true;
    }
    if (r.group) {
      r.group.running--;
      r.group = undefined;
    }
    const w = r.workerId === undefined ? undefined : this.workers.get(r.workerId);
    if (w) {
      w.inFlight.delete(r.id);
      this.sync(w);
      w.recent.set(r.id, true);
      if (w.recent.size > RECENT_IDS_PER_WORKER) w.recent.delete(w.recent.keys().next().value!);
    }
    r.workerId = undefined;
  }

  /** Keeps the open-slot index in step with the worker's eligibility. */
  private sync(w: Worker): void {
    this.setOpen(w, this.workers.has(w.id) && this.eligible(w));
  }

  /** A worker with slot groups is open for a model only while that model's group has room, so
   * selection and the waiting-work invariant stay per model (O(its models) per change). */
  private setOpen(w: Worker, open: boolean): void {
    if (w.open === open && !w.groups) return;
    w.open = open;
    for (const m of w.models) {
      if (m === WILDCARD) {
        if (open) this.openWildcards.add(w);
        else this.openWildcards.delete(w);
        continue;
      }
      let set = this.openByModel.get(m);
      if (open && this.roomFor(w, m)) {
        if (!set) this.openByModel.set(m, (set = new Set()));
        set.add(w);
      } else if (set) {
        set.delete(w);
        if (set.size === 0) this.openByModel.delete(m);
      }
    }
  }

  private index(w: Worker): void {
    for (const m of w.models) {
      if (m === WILDCARD) {
        this.wildcards.add(w);
        continue;
      }
      let set = this.byModel.get(m);
      if (!set) this.byModel.set(m, (set = new Set()));
      set.add(w);
    }
  }

  private unindex(w: Worker): void {
    this.wildcards.delete(w);
    for (const m of w.models) {
      const set = this.byModel.get(m);
      if (!set) continue;
      set.delete(w);
      if (set.size === 0) this.byModel.delete(m);
    }
  }
}

/** The model names a worker may serve the request as. */
function servedAs(r: Req): readonly string[] {
  return r.alias ? r.alias.targets : [r.model];
}

function isSick(w: Worker): boolean {
  return w.backendDown || w.breaker === 'open';
}

/** Capacity to weigh a worker by: what it claimed, but no more than it has shown (at least 1). */
function shownCapacity(w: Worker): number {
  return Math.min(w.maxConcurrent, Math.max(1, w.proven));
}

function fail(requestId: string, code: ErrorCode, message: string): Command {
  return { type: 'fail', requestId, code, message };
}

/** Seconds for a message: "30", or "0.5" for sub-second settings. */
function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

function assertNever(x: never): never {
  throw new Error(`unhandled case ${String(x)}`);
}
