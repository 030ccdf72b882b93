// A real LLM backend for end-to-end tests and the demo: llama.cpp's llama-server with a generated tiny model.
// ensureLlama() fetches/builds both once into <repo>/.cache/llama (cross-process lock); startLlama() runs one.


import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';


const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(REPO, '.cache', 'llama');
const SERVER_BIN = join(CACHE, 'bin', 'llama-server');
const MODEL = join(CACHE, 'tiny.gguf');
const LOCK = join(CACHE, '.lock');
/** A failed download is remembered this long, so parallel/successive test files skip at once. */
const FAILED = join(CACHE, 'fetch-failed.json');
const FAILED_TTL_MS = 10 * 60_000;
const FETCH_TIMEOUT_MS = 180_000;

export type LlamaReady = { serverBin: string; model: string };
export type LlamaSkip = { skip: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command in the repo; resolves with its exit code (or 'timeout') and output tail. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | 'timeout'; out: string }> {
  return new Promise((resolve) => {
    // own process group, so a timeout also kills apt-get & co. started by the script
    const child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const keep = (b: Buffer) => (out = (out + b.toString('utf8')).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on('error', (err) => keep(Buffer.from(`\n${err.message}`)));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 'timeout' : (code ?? 1), out });
    });
  });
}

/** The most telling line of a failed command: apt's first "E:" line, else its last line. */
function reasonLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => l.startsWith('E: ')) ?? lines.at(-1) ?? 'no output').slice(0, 200);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock is stale when its owner died, or (owner not written yet) when it is old. */
async function lockIsStale(): Promise<boolean> {
  const owner = Number((await readFile(join(LOCK, 'owner'), 'utf8').catch(() => '')).trim());
  if (owner > 0) return !isAlive(owner);
  const st = await stat(LOCK).catch(() => undefined);
  return st !== undefined && Date.now() - st.mtimeMs > 30_000;
}

/** mkdir is atomic across processes: whoever creates the directory holds the lock. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + FETCH_TIMEOUT_MS + 60_000;
  for (;;) {
    try {
      await mkdir(LOCK);
      await writeFile(join(LOCK, 'owner'), `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await lockIsStale()) await rm(LOCK, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK}`);
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

async function recentFailure(): Promise<string | undefined> {
  const raw = await readFile(FAILED, 'utf8').catch(() => undefined);
  if (raw === undefined) return undefined;
  try {
    const f = JSON.parse(raw) as { at: number; reason: string };
    if (Date.now() - f.at < FAILED_TTL_MS) return f.reason;
  } catch {
    /* corrupt: ignore */
  }
  return undefined;
}

/**
 * Makes sure llama-server and the tiny model are in .cache/llama, fetching/generating them once.
 * Returns their paths, or { skip } with a one-line reason when the binary can't be had here.
 */
export async function ensureLlama(): Promise<LlamaReady | LlamaSkip> {
  if (existsSync(SERVER_BIN) && existsSync(MODEL)) return { serverBin: SERVER_BIN, model: MODEL };
  await mkdir(CACHE, { recursive: true });
  return withLock(async () => {
    if (!existsSync(SERVER_BIN)) {
      const cached = await recentFailure();
      if (cached) return { skip: `llama-server could not be fetched: ${cached} (cached; delete ${FAILED} to retry)` };
      const r = await run('bash', ['scripts/get-llama-server.sh', join(CACHE, 'bin')], FETCH_TIMEOUT_MS);
      if (r.code !== 0 || !existsSync(SERVER_BIN)) {
        const reason = r.code === 'timeout' ? `timed out after ${FETCH_TIMEOUT_MS / 1000} s` : `exit ${r.code}: ${reasonLine(r.out)}`;
        await writeFile(FAILED, JSON.stringify({ at: Date.now(), reason }));
        return { skip: `llama-server could not be fetched: ${reason}` };
      }
      await rm(FAILED, { force: true });
    }
    if (!existsSync(MODEL)) {
      const r = await run(process.execPath, ['scripts/gen-tiny-gguf.mjs', MODEL], 60_000);
      if (r.code !== 0) throw new Error(`gen-tiny-gguf.mjs failed (${r.code}): ${reasonLine(r.out)}`);
    }
    return { serverBin: SERVER_BIN, model: MODEL };
  });
}

export interface LlamaServer {
  url: string;
  port: number;
  /** Reads one value from /metrics, e.g. 'llamacpp:tokens_predicted_total'. */
  metric(name: string): Promise<number>;
  /** SIGTERM, SIGKILL after 3 s; resolves once the process has exited. */
  close(): Promise<void>;
  /** SIGKILL now (a crash); resolves once the process has exited. */
  kill(): Promise<void>;
}

// servers still running when the test process exits are killed with it
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface LlamaOptions {
  /** Model id served (/v1/models) and accepted. */
  alias: string;
  /** Parallel slots, -np (default 2). */
  slots?: number;
  /** Total context, split across slots, -c (default 8192). */
  ctx?: number;
  /** CPU threads, -t (default 1). */
  threads?: number;
  /** Listen on this port (default: a free one). */
  port?: number;
  /** MiB of host memory for cached prompts besides the slots, --cache-ram (default: llama-server's). */
  cacheRam?: number;
}

/** Starts llama-server on a free port and waits until GET /health answers 200. */
export async function startLlama(opts: LlamaOptions): Promise<LlamaServer> {
  const ready = await ensureLlama();
  if ('skip' in ready) throw new Error(ready.skip);
  if (opts.port !== undefined) return startOnce(ready, opts, opts.port);
  let lastErr: Error | undefined;
  // the free port can be taken between probing and binding; try another one then
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(ready, opts, await freePort());
    } catch (err) {
      lastErr = err as Error;
      if (!/bind|address already in use/i.test(lastErr.message)) throw lastErr;
    }
  }
  throw lastErr as Error;
}

async function startOnce(ready: LlamaReady, opts: LlamaOptions, port: number): Promise<LlamaServer> {
  const args = ['-m', ready.model, '-a', opts.alias, '--host', '127.0.0.1', '--port', String(port)];
  args.push('-c', String(opts.ctx ?? 8192), '-np', String(opts.slots ?? 2), '--metrics');
  // one thread: ggml's threads spin at barriers, and with test processes competing for the CPUs
  // two threads ran ~15x slower (80 vs 1,400 tokens/s); one thread is as fast for this tiny model
  args.push('-t', String(opts.threads ?? 1));
  if (opts.cacheRam !== undefined) args.push('--cache-ram', String(opts.cacheRam));
  const child = spawn(ready.serverBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let tail = '';
  const keep = (b: Buffer) => (tail = (tail + b.toString('utf8')).slice(-3000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited(child);
      clearTimeout(t);
    }
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`llama-server exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${tail}`);
    }
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
      .then(async (r) => (await r.arrayBuffer(), r.status === 200))
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`llama-server not healthy after 60 s:\n${tail}`);
    }
    await sleep(100);
  }

  return {
    url,
    port,
    close,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    },
    async metric(name: string): Promise<number> {
      const text = await (await fetch(`${url}/metrics`)).text();
      for (const line of text.split('\n')) {
        if (line.startsWith(name) && line[name.length] === ' ') return Number(line.slice(name.length + 1));
      }
      throw new Error(`metric ${name} not found in ${url}/metrics`);
    },
  };
}


function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
