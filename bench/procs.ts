// Child processes for the benchmark: spawns dist/cli/*.js (or $BENCH_DIST/cli/*.js) with its own `node` flags (e.g. --cpu-prof),
// logs each child's stdout/stderr to bench/out/logs/, polls HTTP until a child is ready, reads its
// resident memory, and stops it (SIGTERM so profiles get written, SIGKILL as a last resort).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, cpSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The build under test; BENCH_DIST=/other/dist compares another build (say, a patched copy). */
export let DIST = process.env['BENCH_DIST'] ?? join(ROOT, 'dist');

/** Runs the children from a private copy of the build, so a rebuild of dist/ mid-run (tests, other
 * work in the tree) can't change what is measured. The copy stays under the repo for node_modules. */
export function snapshotDist(): string {
  const copy = join(OUT_DIR, 'dist');
  rmSync(copy, { recursive: true, force: true });
  cpSync(DIST, copy, { recursive: true });
  DIST = copy;
  return copy;
}
export const OUT_DIR = join(ROOT, 'bench', 'out');
const LOG_DIR = join(OUT_DIR, 'logs');
const live = new Set<Child>();

export class Child {
  readonly exited: Promise<void>;
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    live.add(this);
    this.exited = once(proc, 'exit').then(() => void live.delete(this));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.running && this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export interface SpawnOptions {
  /** Flags for node itself, before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Another build to run the script from (A/B comparisons); default the one under test. */
  dist?: string;
}

/** Starts `node [nodeArgs] dist/cli/<script> [args]`, output appended to bench/out/logs/<name>.log. */
export function spawnCli(name: string, script: string, args: string[], opts: SpawnOptions = {}): Child {
  mkdirSync(LOG_DIR, { recursive: true });
  const fd = openSync(join(LOG_DIR, `${name}.log`), 'w');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), join(opts.dist ?? DIST, 'cli', script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  return new Child(name, proc);
}

/** A port free right now on 127.0.0.1 (the child binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls GET `url` until `ok(json)` holds; fails early if `child` exits. */
export async function waitHttp(child: Child, url: string, ok: (body: unknown) => boolean = () => true, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (!child.running) throw new Error(`${child.name} exited early (see bench/out/logs/${child.name}.log)`);
    try {
      const res = await fetch(url);
      if (res.ok && ok(await res.json())) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`${child.name}: timed out waiting for ${url}`);
    await sleep(50);
  }
}

/** Resident set size of a process in KiB (VmRSS from /proc/<pid>/status). */
export function rssKb(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Open file descriptors of a process (entries of /proc/<pid>/fd). */
export async function fdCount(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(`/proc/${pid}/fd`)).length;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Stops every child still running (end of a workload, or on the way out). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

process.on('exit', () => {
  for (const c of live) if (c.running) c.proc.kill('SIGKILL');
});
