// Starts real modelrelay processes (server, workers, mock backend) from dist/ for integration tests,
// reads their JSON log lines, and lets tests await log events instead of sleeping.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { MockStats } from '../../src/mock-backend/types.js';

export type { MockStats };

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const live = new Set<Proc>();

export type LogLine = Record<string, unknown> & { msg?: string };

export class Proc {
  readonly lines: LogLine[] = [];
  /** Keep at most about this many lines (the oldest go first): for long-running processes. */
  maxLines = Infinity;
  /** Called with every log line as it arrives. */
  onLine: ((l: LogLine) => void) | undefined;
  readonly stderr: string[] = [];
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    live.add(this);
    this.exited = once(child, 'exit').then(([code, signal]) => {
      live.delete(this);
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      this.lines.push(line);
      this.onLine?.(line);
      if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - Math.floor(this.maxLines / 2));
      this.waiters = this.waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
    });
    createInterface({ input: child.stderr! }).on('line', (text) => this.stderr.push(text));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (past or future) matching `pred`. */
  waitFor(pred: (l: LogLine) => boolean, what = 'log line', timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        reject(new Error(`${this.name}: timed out waiting for ${what}\nlast lines:\n${this.lines.slice(-8).map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${this.stderr.slice(-8).join('\n')}`));
      }, timeoutMs);
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  }

  /** Waits for a line whose msg is `msg` and whose fields include `fields`. */
  waitMsg(msg: string, fields: Record<string, unknown> = {}, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v), `'${msg}' ${JSON.stringify(fields)}`, timeoutMs);
  }

  /** Counts lines seen so far matching msg+fields. */
  count(msg: string, fields: Record<string, unknown> = {}): number {
    return this.lines.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v)).length;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** What every command inherits besides PATH and HOME: the SQLite addon a run on another Node than
 * npm ci's names (scripts/test-node24.mjs). */
function passThrough(): Record<string, string> {
  const addon = process.env['MODELRELAY_SQLITE_ADDON'];
  return addon ? { MODELRELAY_SQLITE_ADDON: addon } : {};
}

/** Starts one of the commands in dist/cli with exactly these arguments and environment (plus PATH, HOME and passThrough()). */
export function spawnCli(name: string, script: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [`${ROOT}dist/cli/${script}`, ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...passThrough(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(name, child);
}

/** Starts modelrelay-server with exactly these arguments, without waiting for it to listen. */
export function spawnServer(args: string[], env: Record<string, string> = {}): Proc {
  return spawnCli('server', 'server.js', args, env);
}

export interface ServerProc extends Proc {
  url: string;
}

export const SECRET = 'test-secret';

/** `sharedSecret: false` starts it without --worker-secret (workers then need worker tokens). */
export async function startServer(args: string[] = [], env: Record<string, string> = {}, opts: { sharedSecret?: boolean } = {}): Promise<ServerProc> {
  const secret = opts.sharedSecret === false ? [] : ['--worker-secret', SECRET];
  const p = spawnCli('server', 'server.js', ['--listen', '127.0.0.1:0', ...secret, ...args], env) as ServerProc;
  const line = await p.waitMsg('listening');
  p.url = line['url'] as string;
  return p;
}

export interface WorkerOptions {
  server: ServerProc | string;
  backend: string;
  name: string;
  models?: string;
  maxConcurrency?: number;
  secret?: string;
  args?: string[];
  /** Wait for the server to log the registration (default true). */
  waitRegistered?: boolean;
  /** Pass no --worker-secret (the args give it another way). */
  omitSecret?: boolean;
  /** Extra environment (proxy variables, NODE_EXTRA_CA_CERTS). */
  env?: Record<string, string>;
}

export async function startWorker(o: WorkerOptions): Promise<Proc> {
  const serverUrl = typeof o.server === 'string' ? o.server : o.server.url;
  const p = spawnCli(`worker ${o.name}`, 'worker.js', [
    '--proxy-url', serverUrl,
    ...(o.omitSecret ? [] : ['--worker-secret', o.secret ?? SECRET]),
    '--backend-url', o.backend,
    '--worker-name', o.name,
    '--models', o.models ?? 'mock-model',
    '--max-concurrency', String(o.maxConcurrency ?? 4),
    ...(o.args ?? []),
  ], o.env);
  if (o.waitRegistered !== false) await p.waitMsg('registered');
  return p;
}

export interface MockProc extends Proc {
  url: string;
  stats(): Promise<MockStats>;
  reset(): Promise<void>;
}


export async function startMock(args: string[] = []): Promise<MockProc> {
  const p = spawnCli('mock', 'mock-backend.js', ['--listen', '127.0.0.1:0', ...args]) as MockProc;
  const line = await p.waitMsg('mock backend listening');
  p.url = line['url'] as string;
  p.stats = async () => (await (await fetch(`${p.url}/_mock/stats`)).json()) as MockStats;
  p.reset = async () => void (await fetch(`${p.url}/_mock/reset`, { method: 'POST' })).arrayBuffer();
  return p;
}

/** A port free on 127.0.0.1 now (for a process that must listen on a known port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a truthy value: for state only observable by asking (a backend's counters). */
export async function until<T>(check: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function health(server: ServerProc): Promise<{ workers_connected: number; queue_depth: number; status: string }> {
  return (await (await fetch(`${server.url}/health`)).json()) as { workers_connected: number; queue_depth: number; status: string };
}

/** Kills every process this test file started. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});
