// One local backend a worker serves: its HTTP pool, its models (given, or read from it and kept
// fresh, with the public names clients use for them: model-names.ts), its own concurrency limit and
// its own health. A worker has one per entry of its config
// file's `backends`, or one for --backend-url. Also here: what the worker tells the server about
// several of them, and which one a request goes to.
import type { Logger } from '../log.js';
import { BackendClient } from './backend-client.js';
import { BackendHealth, describeFailure, type HealthOptions } from './backend-health.js';
import type { ProxyChoice } from './egress-proxy.js';
import { discoverModels } from './model-discovery.js';
import { ModelNames, parseModelEntries, parseModelMap } from './model-names.js';
import type { RunnerOptions } from './request-runner.js';

export interface BackendSpec {
  url: string;
  /** Explicit model entries (`name`, or `public=backend`: model-names.ts), or 'auto' to read them
   * from the backend. */
  models: string[] | 'auto';
  /** With 'auto': `backend=public` entries renaming discovered models. */
  modelMap: string[];
  maxConcurrency: number;
  /** Sent to the backend as `Authorization: Bearer …` in place of the client's. */
  apiKey?: string;
  /** The proxy the environment puts this backend behind (egress-proxy.ts), if any. */
  egress: ProxyChoice;
}

export class LocalBackend {
  readonly client: BackendClient;
  readonly health: BackendHealth;
  /** The public names it serves now and what it calls each: the configured ones, or the last list
   * read from it, renamed by its model map. */
  names: ModelNames;
  /** Its own names, as last read (auto). */
  private backendModels: string[] = [];
  private readonly modelMap: ReadonlyMap<string, readonly string[]>;
  private unmatchedLogged = '';
  /** Requests running on it. */
  running = 0;
  /** Set per session, at register_ack. */
  runnerOptions: RunnerOptions | undefined;

  constructor(
    readonly spec: BackendSpec,
    health: HealthOptions,
    onChange: (backend: LocalBackend, up: boolean, reason: string) => void,
  ) {
    this.client = new BackendClient(spec.url, Math.max(2, spec.maxConcurrency * 2), spec.egress.proxy);
    this.health = new BackendHealth(this.client, health, (up, reason) => onChange(this, up, reason));
    this.modelMap = parseModelMap(spec.modelMap);
    this.names = spec.models === 'auto' ? ModelNames.discovered([], this.modelMap) : ModelNames.listed(parseModelEntries(spec.models));
  }

  /** The public names it serves now. */
  get models(): string[] {
    return this.names.advertised;
  }

  get url(): string {
    return this.spec.url;
  }

  get auto(): boolean {
    return this.spec.models === 'auto';
  }

  get full(): boolean {
    return this.running >= this.spec.maxConcurrency;
  }

  /** Re-reads the models of an 'auto' backend; keeps the last list when it can't. Its names are
   * replaced even when the public list is the same: a public name may now stand for another model. */
  async discover(log: Logger): Promise<void> {
    if (!this.auto) return;
    try {
      this.backendModels = await discoverModels(this.client);
      log.info({ backend: this.url, models: this.backendModels }, 'discovered backend models');
    } catch (err) {
      log.warn({ err: (err as Error).message, backend: this.url }, 'could not read the backend model list; will retry');
      if ((err as { code?: string }).code === 'ECONNREFUSED') this.health.markDown(describeFailure(err, this.client.origin));
    }
    this.names = ModelNames.discovered(this.backendModels, this.modelMap);
    // A map entry that matches nothing is worth a warning (an empty list is a backend not read yet).
    const unmatched = this.backendModels.length > 0 ? ModelNames.unmatched(this.backendModels, this.modelMap) : [];
    if (unmatched.join('\n') !== this.unmatchedLogged) {
      this.unmatchedLogged = unmatched.join('\n');
      if (unmatched.length > 0) log.warn({ backend: this.url, unmatched, backend_models: this.backendModels.slice(0, 20) }, '--model-map names models the backend does not list');
    }
  }

  close(): void {
    this.health.stop();
    void this.client.close().catch(() => {});
  }
}

export interface Advertised {
  /** The models to register or update: those of the backends that are up, or, when none is, all. */
  models: string[];
  /** Every backend is down: what backend-health reports as the worker's state, with why. */
  down: string | undefined;
}

/**
 * What the server is told about several backends on one connection. A backend that is down has its
 * models withdrawn (a models_update), so they are out of rotation here while the others serve; when
 * every backend is down the worker keeps its models and says it is down (backend_status), exactly
 * as a worker with a single backend does.
 */
export function advertise(backends: readonly LocalBackend[]): Advertised {
  const up = backends.filter((b) => b.health.isUp);
  const from = up.length > 0 ? up : backends;
  const models = [...new Set(from.flatMap((b) => b.models))];
  if (up.length > 0) return { models, down: undefined };
  const reasons = backends.map((b) => b.health.reason);
  return { models, down: backends.length === 1 ? reasons[0]! : `all ${backends.length} backends are down: ${reasons.join('; ')}` };
}

/** backend-slots: which advertised models share how many slots. Backends that serve a model in
 * common are one group (their limits add up), so groups never overlap. A lone backend: none (the
 * worker's own limit is the one pool). */
export function slotGroups(backends: readonly LocalBackend[]): { models: string[]; max_concurrency: number }[] | undefined {
  if (backends.length < 2) return undefined;
  const up = backends.filter((b) => b.health.isUp && b.models.length > 0);
  const groups: { models: Set<string>; max: number }[] = [];
  for (const b of up) {
    const g = { models: new Set(b.models), max: b.spec.maxConcurrency };
    for (let i = groups.length - 1; i >= 0; i--) {
      const other = groups[i]!;
      if (![...other.models].some((m) => g.models.has(m))) continue;
      for (const m of other.models) g.models.add(m);
      g.max += other.max;
      groups.splice(i, 1);
    }
    groups.push(g);
  }
  return groups.map((g) => ({ models: [...g.models], max_concurrency: g.max }));
}

/**
 * The backend for a request's model: among those that serve it, one that is up with a free slot
 * (the least loaded); else 'busy' when one that is up is full; else a down one (its call fails fast
 * and is reported as unavailable). A lone backend takes every model, as a single-backend worker does.
 */
export function route(backends: readonly LocalBackend[], model: string): LocalBackend | 'busy' | undefined {
  const serving = backends.length === 1 ? backends : backends.filter((b) => b.models.includes(model));
  let best: LocalBackend | undefined;
  let busy = false;
  for (const b of serving) {
    if (!b.health.isUp) continue;
    if (b.full) {
      busy = true;
      continue;
    }
    if (!best || b.running / b.spec.maxConcurrency < best.running / best.spec.maxConcurrency) best = b;
  }
  if (best) return best;
  if (busy) return 'busy';
  return serving[0];
}
