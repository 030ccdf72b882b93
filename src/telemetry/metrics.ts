// The Prometheus side (prom-client's registry): every series the README lists, under modelrelay_.
// The hot path touches only children bound once per model (and route and status): a field update,
// no label object; gauges that mirror state (queue depth, workers, in flight) are read at scrape time.
import { Counter, Gauge, Registry } from 'prom-client';
import { type CounterChild, CounterFamily, type HistogramChild, HistogramFamily } from './families.js';

export interface LiveViews {
  queueDepths(): Map<string, number>;
  workers(): { id: string; name: string; inFlight: number; maxConcurrent: number }[];
  /** The scheduler's router: its decisions by reason, and its index's size. */
  routing?(): { readonly decisions: Readonly<Record<string, number>>; readonly index: { readonly size: number; readonly bytes: number } };
}

interface ModelChildren {
  queueWait: HistogramChild;
  firstByte: HistogramChild;
  duration: HistogramChild;
  promptTokens: CounterChild;
  completionTokens: CounterChild;
  requeues: CounterChild;
  /** route → status → counter */
  requests: Map<string, Map<number, CounterChild>>;
}

/** Distinct model labels kept; past it (clients can send any name to a wildcard worker) '_other'. */
const MAX_MODEL_LABELS = 200;

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: CounterFamily;
  private readonly queueWait: HistogramFamily;
  private readonly firstByte: HistogramFamily;
  private readonly duration: HistogramFamily;
  private readonly tokens: CounterFamily;
  private readonly requeues: CounterFamily;
  private readonly cancels: CounterFamily;
  private readonly disconnects: CounterFamily;
  private readonly authFailures: CounterFamily;
  private readonly keyLimits: CounterFamily;
  private readonly models = new Map<string, ModelChildren>();

  constructor(views: LiveViews) {
    const registers = [this.registry];
    processMetrics(registers);
    const r = this.registry;
    this.requests = new CounterFamily(r, 'modelrelay_requests_total', 'Finished client requests by model, route and HTTP status.', ['model', 'route', 'status']);
    this.queueWait = new HistogramFamily(r, 'modelrelay_queue_wait_seconds', 'Time from arrival to dispatch to a worker.', ['model'], [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60]);
    this.firstByte = new HistogramFamily(r, 'modelrelay_time_to_first_byte_seconds', 'Time from arrival to the first byte of the answer.', ['model'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
    this.duration = new HistogramFamily(r, 'modelrelay_request_duration_seconds', 'Time from arrival to the end of the answer.', ['model'], [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]);
    this.tokens = new CounterFamily(r, 'modelrelay_tokens_total', 'Tokens reported by backends, by model and kind (prompt, completion).', ['model', 'kind']);
    this.requeues = new CounterFamily(r, 'modelrelay_requeues_total', 'Requests sent to another worker after theirs was lost or refused them.', ['model']);
    this.cancels = new CounterFamily(r, 'modelrelay_cancels_total', 'Cancels sent to workers, by reason.', ['reason']);
    this.disconnects = new CounterFamily(r, 'modelrelay_worker_disconnects_total', 'Registered workers that left, by cause.', ['cause']);
    this.authFailures = new CounterFamily(r, 'modelrelay_auth_failures_total', 'Refused credentials, by kind (client_key, worker, admin).', ['kind']);
    this.keyLimits = new CounterFamily(r, 'modelrelay_key_limited_total', "Requests refused by a client key's rate limit, by key name and limit.", ['key', 'limit']);
    new Gauge({
      name: 'modelrelay_queue_depth',
      help: 'Requests waiting for a free worker, by model.',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const [model, n] of views.queueDepths()) this.set({ model }, n);
      },
    });
    new Gauge({
      name: 'modelrelay_workers_connected',
      help: 'Registered worker connections.',
      registers,
      collect() {
        this.set(views.workers().length);
      },
    });
    new Gauge({
      name: 'modelrelay_worker_in_flight',
      help: 'Requests running on each worker.',
      labelNames: ['worker_id', 'worker'],
      registers,
      collect() {
        this.reset();
        for (const w of views.workers()) this.set({ worker_id: w.id, worker: w.name }, w.inFlight);
      },
    });
    new Gauge({
      name: 'modelrelay_worker_max_concurrent',
      help: 'Requests each worker accepts at once.',
      labelNames: ['worker_id', 'worker'],
      registers,
      collect() {
        this.reset();
        for (const w of views.workers()) this.set({ worker_id: w.id, worker: w.name }, w.maxConcurrent);
      },
    });
    new Counter({
      name: 'modelrelay_routing_decisions_total',
      help: 'Dispatches by why that worker was chosen: affinity, prefix, load_bound, least_loaded (on arrival); queued, queued_affinity (from the queue).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const d = views.routing?.().decisions;
        if (d) for (const [reason, n] of Object.entries(d)) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: 'modelrelay_routing_index_entries',
      help: 'Prompt blocks and affinity keys the cache-aware routing index remembers.',
      registers,
      collect() {
        this.set(views.routing?.().index.size ?? 0);
      },
    });
    for (const kind of ['client_key', 'worker', 'admin']) this.authFailures.child(kind);
  }

  finished(model: string, route: string, status: number, queueS: number, firstByteS: number, totalS: number, prompt: number, completion: number): void {
    const m = this.model(model);
    let byStatus = m.requests.get(route);
    if (!byStatus) m.requests.set(route, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) byStatus.set(status, (c = this.requests.child(this.label(model), route, String(status))));
    c.inc();
    if (!Number.isNaN(queueS)) m.queueWait.observe(queueS);
    if (!Number.isNaN(firstByteS)) m.firstByte.observe(firstByteS);
    m.duration.observe(totalS);
    if (prompt > 0) m.promptTokens.inc(prompt);
    if (completion > 0) m.completionTokens.inc(completion);
  }

  /** A request refused before it had a model (bad body, missing key). */
  rejected(route: string, status: number): void {
    this.requests.child('', route, String(status)).inc();
  }

  requeued(model: string): void {
    this.model(model).requeues.inc();
  }

  cancel(reason: string): void {
    this.cancels.child(reason).inc();
  }

  workerDisconnect(cause: string): void {
    this.disconnects.child(cause).inc();
  }

  keyLimited(key: string, limit: 'requests_per_minute' | 'tokens_per_minute'): void {
    this.keyLimits.child(key, limit).inc();
  }

  authFailure(kind: 'client_key' | 'worker' | 'admin'): void {
    this.authFailures.child(kind).inc();
  }

  private label(model: string): string {
    return this.models.has(model) || this.models.size < MAX_MODEL_LABELS ? model : '_other';
  }

  private model(model: string): ModelChildren {
    let m = this.models.get(model);
    if (m) return m;
    const label = this.label(model);
    if (label !== model) {
      m = this.models.get(label);
      if (m) return m;
    }
    m = {
      queueWait: this.queueWait.child(label),
      firstByte: this.firstByte.child(label),
      duration: this.duration.child(label),
      promptTokens: this.tokens.child(label, 'prompt'),
      completionTokens: this.tokens.child(label, 'completion'),
      requeues: this.requeues.child(label),
      requests: new Map(),
    };
    this.models.set(label, m);
    return m;
  }
}

/** A few process series, read at scrape time. (prom-client's default set also watches every garbage
 * collection, a cost that grows with the request rate; these cost nothing between scrapes.) */
function processMetrics(registers: Registry[]): void {
  const startSecs = Math.round((Date.now() - process.uptime() * 1000) / 1000);
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'User and system CPU time spent, in seconds.',
    registers,
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: 'process_start_time_seconds',
    help: 'Start time of the process since the Unix epoch, in seconds.',
    registers,
    collect() {
      this.set(startSecs);
    },
  });
  new Gauge({
    name: 'nodejs_heap_size_used_bytes',
    help: 'V8 heap in use, in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
}
