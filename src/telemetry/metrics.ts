// The Prometheus side (prom-client): every series the README lists, under modelrelay_. The hot path
// touches only label children bound once per model (and route and status), never a label object;
// gauges that mirror state (queue depth, workers, in flight) are read from the relay at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Counter as CounterT, type Histogram as HistogramT } from 'prom-client';

export interface LiveViews {
  queueDepths(): Map<string, number>;
  workers(): { id: string; name: string; inFlight: number; maxConcurrent: number }[];
}

type CounterChild = ReturnType<CounterT<string>['labels']>;
type HistogramChild = ReturnType<HistogramT<string>['labels']>;

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
  private readonly requests: Counter<'model' | 'route' | 'status'>;
  private readonly queueWait: Histogram<'model'>;
  private readonly firstByte: Histogram<'model'>;
  private readonly duration: Histogram<'model'>;
  private readonly tokens: Counter<'model' | 'kind'>;
  private readonly requeues: Counter<'model'>;
  private readonly cancels: Counter<'reason'>;
  private readonly disconnects: Counter<'cause'>;
  private readonly authFailures: Counter<'kind'>;
  private readonly models = new Map<string, ModelChildren>();

  constructor(views: LiveViews) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'modelrelay_requests_total', help: 'Finished client requests by model, route and HTTP status.', labelNames: ['model', 'route', 'status'], registers });
    this.queueWait = new Histogram({
      name: 'modelrelay_queue_wait_seconds',
      help: 'Time from arrival to dispatch to a worker.',
      labelNames: ['model'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.firstByte = new Histogram({
      name: 'modelrelay_time_to_first_byte_seconds',
      help: 'Time from arrival to the first byte of the answer.',
      labelNames: ['model'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.duration = new Histogram({
      name: 'modelrelay_request_duration_seconds',
      help: 'Time from arrival to the end of the answer.',
      labelNames: ['model'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.tokens = new Counter({ name: 'modelrelay_tokens_total', help: 'Tokens reported by backends, by model and kind (prompt, completion).', labelNames: ['model', 'kind'], registers });
    this.requeues = new Counter({ name: 'modelrelay_requeues_total', help: 'Requests sent to another worker after theirs was lost or refused them.', labelNames: ['model'], registers });
    this.cancels = new Counter({ name: 'modelrelay_cancels_total', help: 'Cancels sent to workers, by reason.', labelNames: ['reason'], registers });
    this.disconnects = new Counter({ name: 'modelrelay_worker_disconnects_total', help: 'Registered workers that left, by cause.', labelNames: ['cause'], registers });
    this.authFailures = new Counter({ name: 'modelrelay_auth_failures_total', help: 'Refused credentials, by kind (client_key, worker, admin).', labelNames: ['kind'], registers });
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
    for (const kind of ['client_key', 'worker', 'admin']) this.authFailures.labels(kind);
  }

  finished(model: string, route: string, status: number, queueS: number, firstByteS: number, totalS: number, prompt: number, completion: number): void {
    const m = this.model(model);
    let byStatus = m.requests.get(route);
    if (!byStatus) m.requests.set(route, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) byStatus.set(status, (c = this.requests.labels(this.label(model), route, String(status))));
    c.inc();
    if (!Number.isNaN(queueS)) m.queueWait.observe(queueS);
    if (!Number.isNaN(firstByteS)) m.firstByte.observe(firstByteS);
    m.duration.observe(totalS);
    if (prompt > 0) m.promptTokens.inc(prompt);
    if (completion > 0) m.completionTokens.inc(completion);
  }

  /** A request refused before it had a model (bad body, missing key). */
  rejected(route: string, status: number): void {
    this.requests.labels('', route, String(status)).inc();
  }

  requeued(model: string): void {
    this.model(model).requeues.inc();
  }

  cancel(reason: string): void {
    this.cancels.labels(reason).inc();
  }

  workerDisconnect(cause: string): void {
    this.disconnects.labels(cause).inc();
  }

  authFailure(kind: 'client_key' | 'worker' | 'admin'): void {
    this.authFailures.labels(kind).inc();
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
      queueWait: this.queueWait.labels(label),
      firstByte: this.firstByte.labels(label),
      duration: this.duration.labels(label),
      promptTokens: this.tokens.labels(label, 'prompt'),
      completionTokens: this.tokens.labels(label, 'completion'),
      requeues: this.requeues.labels(label),
      requests: new Map(),
    };
    this.models.set(label, m);
    return m;
  }
}
