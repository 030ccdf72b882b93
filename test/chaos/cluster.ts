// The soak's fleet: one server, and per worker its own simulated backend and its own fault proxy
// between it and the server. Everything can be killed, frozen, drained, cut and restarted.
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startServer, startWorker, until, type MockProc, type MockStats, type Proc, type ServerProc } from '../helpers/cluster.js';
import { ProxyHost, type RemoteProxy } from './remote-proxy.js';

export interface FleetConfig {
  workers: number;
  maxConcurrency: number;
  /** Server flags (timeouts) the soak's bounds are derived from. */
  server: {
    heartbeatIntervalSecs: number;
    heartbeatTimeoutSecs: number;
    queueTimeoutSecs: number;
    requestTimeoutSecs: number;
    drainTimeoutSecs: number;
    maxRequeues: number;
  };
  worker: { heartbeatTimeoutSecs: number; drainTimeoutSecs: number };
  logLevel: string;
}

/** A line of the server's log about a worker (or the server stopping), on the soak's clock. */
export interface WorkerEvent {
  at: number;
  msg: string;
  worker: string;
  reason: string;
}

/** Who the server had connected, from its own log: to tell what it could know at a moment. */
export class ServerView {
  private readonly intervals = new Map<string, [number, number][]>();

  constructor(events: WorkerEvent[], end: number) {
    const open = new Map<string, number>();
    const close = (w: string, at: number): void => {
      const from = open.get(w);
      if (from === undefined) return;
      open.delete(w);
      this.intervals.set(w, [...(this.intervals.get(w) ?? []), [from, at]]);
    };
    for (const e of events) {
      if (e.msg === 'worker registered') {
        close(e.worker, e.at);
        open.set(e.worker, e.at);
      } else if (e.msg === 'worker disconnected') close(e.worker, e.at);
      else if (e.msg === 'server stopping') for (const w of [...open.keys()]) close(w, e.at);
    }
    for (const w of [...open.keys()]) close(w, end);
  }

  /** Whether, at some moment in [from, to], the server had none of `workers` connected. */
  noneConnected(workers: string[], from: number, to: number): boolean {
    const spans = workers.flatMap((w) => this.intervals.get(w) ?? []).filter(([a, b]) => b > from && a < to).sort((x, y) => x[0] - y[0]);
    let covered = from;
    for (const [a, b] of spans) {
      if (a > covered) return true;
      covered = Math.max(covered, b);
    }
    return covered < to;
  }

  /** How many times the server lost one of `workers` in [from, to]. */
  losses(workers: string[], from: number, to: number): number {
    return workers.reduce((n, w) => n + (this.intervals.get(w) ?? []).filter(([, b]) => b >= from && b <= to).length, 0);
  }
}

/** The models the load uses; every worker also serves one model of its own (`own-wN`). */
export const SHARED_MODELS = ['alpha', 'beta'];

/** The shared models worker `i` serves: of every four, one serves alpha, two both, one beta. */
export function sharedModelsOf(i: number): string[] {
  return [...(i % 4 !== 3 ? ['alpha'] : []), ...(i % 4 !== 0 ? ['beta'] : [])];
}

/** A backend that may be restarted: its high-water mark of concurrent calls survives restarts. */
export class Backend {
  proc!: MockProc;
  private maxBefore = 0;
  constructor(readonly name: string) {}

  async start(port = 0): Promise<void> {
    this.proc = await startMock(['--name', this.name, '--listen', `127.0.0.1:${port}`]);
  }

  get url(): string {
    return this.proc.url;
  }

  async stats(): Promise<MockStats> {
    const s = await this.proc.stats();
    return { ...s, maxActive: Math.max(s.maxActive, this.maxBefore) };
  }

  /** Stops the backend (SIGKILL) and starts it again on the same port. */
  async restart(downMs: number): Promise<void> {
    try {
      this.maxBefore = Math.max(this.maxBefore, (await this.proc.stats()).maxActive);
    } catch {
      // already unreachable
    }
    const port = Number(new URL(this.proc.url).port);
    await this.proc.kill();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start(port);
  }
}

export class FleetWorker {
  proc!: Proc;
  /** 'registered' lines seen in earlier processes of this worker. */
  private registeredBefore = 0;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly models: string[],
    readonly backend: Backend,
    readonly proxy: RemoteProxy,
    private readonly cfg: FleetConfig,
  ) {}

  /** Times this worker has registered, over all its processes. */
  get registrations(): number {
    return this.registeredBefore + (this.proc?.count('registered') ?? 0);
  }

  async start(): Promise<void> {
    if (this.proc) this.registeredBefore += this.proc.count('registered');
    this.proc = await startWorker({
      server: this.proxy.url,
      backend: this.backend.url,
      name: this.name,
      models: this.models.join(','),
      maxConcurrency: this.cfg.maxConcurrency,
      args: ['--heartbeat-timeout', String(this.cfg.worker.heartbeatTimeoutSecs), '--drain-timeout', String(this.cfg.worker.drainTimeoutSecs), '--log-level', 'info'],
      waitRegistered: false,
    });
  }

  /** Waits until the worker registered more than `before` times in all. */
  async registeredAfter(before: number, what: string, timeoutMs: number): Promise<void> {
    await until(() => this.registrations > before, `${this.name} to register again (${what})`, timeoutMs);
  }
}

export class Fleet {
  server!: ServerProc;
  port = 0;
  readonly workers: FleetWorker[] = [];
  readonly backends: Backend[] = [];
  /** The workers' fault proxies, in a process of their own. */
  private readonly proxies = new ProxyHost();
  /** Server processes started after the first. */
  serverRestarts = 0;

  /** The server's log lines about workers coming and going, with the soak's clock (ms). */
  readonly workerEvents: WorkerEvent[] = [];
  clock: () => number = () => 0;

  constructor(readonly cfg: FleetConfig) {}

  private watchServer(): void {
    this.server.maxLines = 5000;
    this.server.onLine = (l) => {
      if (l.msg === 'worker registered' || l.msg === 'worker disconnected' || l.msg === 'closing worker connection' || l.msg === 'worker draining' || l.level === 'warn' || l.level === 'error') {
        this.workerEvents.push({ at: this.clock(), msg: String(l.msg), worker: String(l['worker'] ?? ''), reason: String(l['reason'] ?? l['code'] ?? '') });
      }
    };
  }

  serverArgs(): string[] {
    const s = this.cfg.server;
    return [
      '--heartbeat-interval', String(s.heartbeatIntervalSecs),
      '--heartbeat-timeout', String(s.heartbeatTimeoutSecs),
      '--queue-timeout', String(s.queueTimeoutSecs),
      '--request-timeout', String(s.requestTimeoutSecs),
      '--drain-timeout', String(s.drainTimeoutSecs),
      '--max-requeues', String(s.maxRequeues),
      '--max-queue-len', '1000',
      '--log-level', this.cfg.logLevel,
    ];
  }

  async start(): Promise<void> {
    mkdirSync(this.heapDir, { recursive: true });
    this.server = await startServer(this.serverArgs(), this.serverEnv());
    this.watchServer();
    this.port = Number(new URL(this.server.url).port);
    await this.proxies.start();
    for (let i = 0; i < this.cfg.workers; i++) {
      const backend = new Backend(`b${i + 1}`);
      this.backends.push(backend);
      this.workers.push(new FleetWorker(i, `w${i + 1}`, [...sharedModelsOf(i), `own-w${i + 1}`], backend, await this.proxies.proxy(this.port), this.cfg));
    }
    await Promise.all(this.backends.map((b) => b.start()));
    await Promise.all(this.workers.map((w) => w.start()));
    await this.allRegistered(30_000);
  }

  get url(): string {
    return this.server.url;
  }

  /** Names of the workers serving `model`. */
  workersFor(model: string): string[] {
    return this.workers.filter((w) => w.models.includes(model)).map((w) => w.name);
  }

  /** Backend names of the workers serving `model`. */
  backendsFor(model: string): string[] {
    return this.workers.filter((w) => w.models.includes(model)).map((w) => w.backend.name);
  }

  async health(): Promise<{ workers_connected: number; queue_depth: number; status: string }> {
    const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(5000) });
    return (await r.json()) as { workers_connected: number; queue_depth: number; status: string };
  }

  /** Every worker connected to the (current) server. */
  async allRegistered(timeoutMs: number): Promise<void> {
    await until(async () => {
      try {
        return (await this.health()).workers_connected === this.workers.length;
      } catch {
        return false;
      }
    }, `all ${this.workers.length} workers connected`, timeoutMs);
  }

  /** Stops the server (SIGTERM drain or SIGKILL) and starts it again on the same port. */
  async restartServer(signal: 'SIGTERM' | 'SIGKILL', timeoutMs: number): Promise<void> {
    this.server.signal(signal);
    this.workerEvents.push({ at: this.clock(), msg: 'server stopping', worker: '', reason: signal });
    await Promise.race([
      this.server.exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the server did not exit')), timeoutMs).unref()),
    ]);
    this.server = await startServer([...this.serverArgs(), '--listen', `127.0.0.1:${this.port}`], this.serverEnv());
    this.watchServer();
    this.serverRestarts++;
  }

  /** SIGUSR2 makes the server write a heap snapshot here: the measure of what it retains. */
  private readonly heapDir = join(tmpdir(), `modelrelay-chaos-${process.pid}`);

  private serverEnv(): Record<string, string> {
    return { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${this.heapDir}` };
  }

  /** Bytes of the server's heap snapshot: what it retains once V8 has collected everything it can
   * (a snapshot collects first). The server is held up for the second or so it takes. */
  async retainedHeap(timeoutMs = 30_000): Promise<number> {
    const before = new Set(readdirSync(this.heapDir));
    this.server.signal('SIGUSR2');
    const file = (await until(() => readdirSync(this.heapDir).find((f) => !before.has(f)), 'the heap snapshot', timeoutMs)) as string;
    // The snapshot is written on the server's main thread: once it answers again, the file is whole.
    await until(() => this.health().then(() => true, () => false), 'the server after its heap snapshot', timeoutMs);
    const bytes = statSync(join(this.heapDir, file)).size;
    rmSync(join(this.heapDir, file), { force: true });
    return bytes;
  }

  /** The server process's resident memory, bytes. */
  serverRss(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.server.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.proc?.kill()));
    await this.proxies.stop();
    await this.server?.kill();
    await Promise.all(this.backends.map((b) => b.proc?.kill()));
    rmSync(this.heapDir, { recursive: true, force: true });
  }
}
