// Telemetry: turns what the relay reports (a request finished, was requeued or cancelled, a worker
// came or went, a credential was refused) into Prometheus metrics, the per-request log line and the
// stats the admin API and dashboard read. One place, so the three never disagree.
import type { Logger } from '../log.js';
import { LogLimiter } from '../log-limiter.js';
import type { Outcome } from '../store/index.js';
import { type FinishedRequest, outcomeOf } from './finished-request.js';
import { type LiveViews, Metrics } from './metrics.js';
import { RequestStats, type StatsView } from './request-stats.js';

export { outcomeOf, type FinishedRequest } from './finished-request.js';
export type { LiveViews } from './metrics.js';
export type { StatsView } from './request-stats.js';

export type AuthKind = 'client_key' | 'worker' | 'admin';
export type DisconnectCause = 'closed_by_worker' | 'connection_lost' | 'heartbeat_timeout' | 'drain_timeout' | 'protocol_error' | 'credential_revoked' | 'server_shutdown';

/** Where usage per key goes (the store's batcher); optional, as keys are. */
export interface UsageSink {
  record(keyId: string, outcome: Outcome, promptTokens: number, completionTokens: number, at: number): void;
}

export class Telemetry {
  readonly metrics: Metrics;
  private readonly stats = new RequestStats();
  private readonly logLimiter: LogLimiter;
  usage: UsageSink | undefined;
  /** Tokens a key used, for its tokens_per_minute limit. */
  keyTokens: ((keyId: string, tokens: number) => void) | undefined;

  constructor(
    private readonly log: Logger,
    private readonly views: LiveViews,
  ) {
    this.metrics = new Metrics(views);
    this.logLimiter = new LogLimiter(log);
  }

  requestFinished(r: FinishedRequest, now: number): void {
    const outcome = outcomeOf(r.status, r.errorCode);
    const tc = r.tokenCounts;
    const prompt = tc?.prompt_tokens ?? 0;
    const completion = tc?.completion_tokens ?? 0;
    const queueMs = r.dispatchedAt === undefined ? NaN : r.dispatchedAt - r.receivedAt;
    const firstByteMs = r.firstByteAt === undefined ? NaN : r.firstByteAt - r.receivedAt;
    const totalMs = now - r.receivedAt;
    this.metrics.finished(r.model, r.endpoint, r.status, queueMs / 1000, firstByteMs / 1000, totalMs / 1000, prompt, completion);
    this.stats.finished(r.model, r.workerId, r.workerName, outcome, prompt, completion, now, queueMs, firstByteMs, totalMs);
    if (outcome !== 'ok' && outcome !== 'cancelled') {
      this.stats.error({ at: new Date().toISOString(), request_id: r.id, model: r.model, worker: r.workerName ?? null, status: r.status, error: r.errorCode ?? null });
    }
    if (r.key) {
      this.usage?.record(r.key.id, outcome, prompt, completion, Date.now());
      this.keyTokens?.(r.key.id, prompt + completion);
    }
    if (!this.log.isLevelEnabled('info')) return; // one per request: skip building the record
    this.log.info(
      {
        request_id: r.id,
        model: r.model,
        served_as: r.target,
        endpoint: r.endpoint,
        stream: r.streaming,
        worker: r.workerName,
        route: r.route,
        prefix_blocks: r.matchedBlocks > 0 ? r.matchedBlocks : undefined,
        status: r.status,
        outcome,
        error: r.errorCode,
        queue_ms: Number.isNaN(queueMs) ? undefined : Math.round(queueMs),
        first_byte_ms: Number.isNaN(firstByteMs) ? undefined : Math.round(firstByteMs),
        total_ms: Math.round(totalMs),
        prompt_tokens: tc?.prompt_tokens,
        completion_tokens: tc?.completion_tokens,
        total_tokens: tc?.total_tokens,
        key: r.key?.name,
      },
      'request finished',
    );
  }

  /** Refused before it became a relayed request: bad body, missing or unknown key, too large. */
  /** A client key's rate limit refused a request. */
  keyLimited(keyName: string, limit: 'requests_per_minute' | 'tokens_per_minute'): void {
    this.metrics.keyLimited(keyName, limit);
  }

  rejected(route: string, status: number): void {
    this.metrics.rejected(route, status);
  }

  requeued(r: { id: string; model: string }, fromWorkerId: string | undefined, fromWorker: string | undefined): void {
    this.metrics.requeued(r.model);
    this.stats.requeued(r.model, fromWorkerId);
    this.log.info({ request_id: r.id, model: r.model, from_worker: fromWorker }, 'request requeued');
  }

  cancelled(reason: string): void {
    this.metrics.cancel(reason);
  }

  workerRegistered(id: string, name: string): void {
    this.stats.workerJoined(id, name);
  }

  workerLost(id: string, cause: DisconnectCause): void {
    this.metrics.workerDisconnect(cause);
    this.stats.workerGone(id);
  }

  /** Counts a refused credential; with `fields`, also logs 'client|admin authentication failed'
   * (rate-limited per kind and peer, so one guesser can't flood the log). */
  authFailure(kind: AuthKind, fields?: Record<string, unknown> & { peer: string }): void {
    this.metrics.authFailure(kind);
    if (fields) this.logLimiter.warn(`${kind} ${fields.peer}`, fields, `${kind === 'client_key' ? 'client' : kind} authentication failed`);
  }

  statsView(now: number): StatsView {
    return this.stats.view(now, this.views.queueDepths());
  }

  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }

  get metricsContentType(): string {
    return this.metrics.registry.contentType;
  }
}
