// Counts and latencies per model and per connected worker, the time series and the recent errors:
// what GET /admin/stats and the dashboard show. Bounded like the metrics: a capped number of models,
// workers only while connected, a ring of recent errors.
import { OUTCOMES, type Outcome } from '../store/index.js';
import { LatencyWindow, type LatencySummary } from './latency-window.js';
import { TimeSeries, type SeriesPoint } from './time-series.js';

const WINDOW_MS = 5 * 60_000;
const MAX_MODELS = 200;
const RECENT_ERRORS = 50;

type Counts = Record<Outcome | 'requeued', number>;

class Tally {
  readonly requests: Counts = { ok: 0, client_error: 0, backend_error: 0, cancelled: 0, timed_out: 0, requeued: 0 };
  promptTokens = 0;
  completionTokens = 0;
  readonly latency = new LatencyWindow();

  view(now: number): TallyView {
    return { requests: { ...this.requests }, tokens: { prompt: this.promptTokens, completion: this.completionTokens }, latency_ms: this.latency.summary(now, WINDOW_MS) };
  }
}

export interface TallyView {
  requests: Counts;
  tokens: { prompt: number; completion: number };
  latency_ms: LatencySummary;
}

export interface RecentError {
  at: string;
  request_id: string;
  model: string;
  worker: string | null;
  status: number;
  error: string | null;
}

export interface StatsView {
  window_secs: number;
  models: Record<string, TallyView & { queue_depth: number }>;
  workers: Record<string, TallyView & { name: string }>;
  series: { bucket_secs: number; points: SeriesPoint[] };
  recent_errors: RecentError[];
}

export class RequestStats {
  private readonly models = new Map<string, Tally>();
  private readonly workers = new Map<string, Tally & { name?: string }>();
  private readonly series = new TimeSeries();
  private readonly errors: RecentError[] = [];

  finished(model: string, workerId: string | undefined, workerName: string | undefined, outcome: Outcome, prompt: number, completion: number, at: number, queueMs: number, firstByteMs: number, totalMs: number): void {
    const m = this.model(model);
    const w = workerId === undefined ? undefined : this.worker(workerId, workerName);
    for (const t of w ? [m, w] : [m]) {
      t.requests[outcome]++;
      t.promptTokens += prompt;
      t.completionTokens += completion;
      t.latency.record(at, queueMs, firstByteMs, totalMs);
    }
    // A client that went away is not an error of the relay's.
    this.series.record(Date.now(), outcome !== 'ok' && outcome !== 'cancelled', prompt + completion, totalMs);
  }

  error(e: RecentError): void {
    this.errors.push(e);
    if (this.errors.length > RECENT_ERRORS) this.errors.shift();
  }

  requeued(model: string, workerId: string | undefined): void {
    this.model(model).requests.requeued++;
    if (workerId !== undefined) {
      const w = this.workers.get(workerId);
      if (w) w.requests.requeued++;
    }
  }

  workerJoined(id: string, name: string): void {
    this.worker(id, name);
  }

  workerGone(id: string): void {
    this.workers.delete(id);
  }

  view(now: number, queueDepths: Map<string, number>): StatsView {
    const models: StatsView['models'] = {};
    for (const [name, t] of this.models) models[name] = { ...t.view(now), queue_depth: queueDepths.get(name) ?? 0 };
    for (const [name, depth] of queueDepths) models[name] ??= { ...new Tally().view(now), queue_depth: depth };
    const workers: StatsView['workers'] = {};
    for (const [id, t] of this.workers) workers[id] = { name: t.name ?? id, ...t.view(now) };
    return { window_secs: WINDOW_MS / 1000, models, workers, series: { bucket_secs: 5, points: this.series.points(Date.now()) }, recent_errors: [...this.errors].reverse() };
  }

  private model(model: string): Tally {
    let t = this.models.get(model);
    if (t) return t;
    const key = this.models.size < MAX_MODELS ? model : '_other';
    t = this.models.get(key);
    if (!t) this.models.set(key, (t = new Tally()));
    return t;
  }

  private worker(id: string, name: string | undefined): Tally & { name?: string } {
    let t = this.workers.get(id);
    if (!t) this.workers.set(id, (t = new Tally()));
    if (name !== undefined) t.name = name;
    return t;
  }
}

export { OUTCOMES };
