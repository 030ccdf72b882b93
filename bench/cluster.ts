// The topology under test, as separate processes on 127.0.0.1: the simulated backend, and a relay
// (one server + N workers pointing at that backend). Direct traffic goes to backend.url, relayed
// traffic to relay.url; both reach the same backend process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Child, ROOT, freePort, spawnCli, waitHttp, type SpawnOptions } from './procs.js';

export const SECRET = 'bench-secret';
export const MODEL = 'mock-model';

export interface Backend {
  url: string;
  proc: Child;
}

export interface RelayOptions {
  /** Distinguishes several relays in one run (log file names). */
  label?: string;
  logLevel?: string;
  workers?: number;
  /** Per worker; the server caps what it uses at 4096 per worker. */
  maxConcurrency?: number;
  server?: SpawnOptions;
  worker?: SpawnOptions;
  /** Run server and workers from this build instead (A/B comparisons). */
  dist?: string;
  /** Extra server flags, e.g. ['--request-timeout', '0']. */
  serverArgs?: string[];
}

export interface Relay {
  url: string;
  server: Child;
  workers: Child[];
  /** Starts one more worker and waits until the server counts it. */
  addWorker(): Promise<Child>;
}

export async function startBackend(label = 'backend', opts: SpawnOptions = {}): Promise<Backend> {
  const port = await freePort();
  const proc = spawnCli(label, 'mock-backend.js', ['--listen', `127.0.0.1:${port}`, '--models', MODEL, '--tokens', '8', '--token-delay-ms', '0'], opts);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(proc, `${url}/v1/models`);
  return { url, proc };
}

export async function startRelay(backendUrl: string, o: RelayOptions = {}): Promise<Relay> {
  const label = o.label ?? 'relay';
  const logLevel = o.logLevel ?? 'warn';
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawnCli(
    `${label}-server`,
    'server.js',
    ['--listen', `127.0.0.1:${port}`, '--worker-secret', SECRET, '--max-queue-len', '0', '--log-level', logLevel, ...(o.serverArgs ?? [])],
    // The bench runs thousands of streams from one address through one worker claiming 4096 slots:
    // lift the connection and per-worker caps (as env vars, which older builds simply ignore).
    { ...o.server, env: { MAX_CONNECTIONS_PER_IP: '0', MAX_CONNECTIONS: '0', MAX_WORKER_CONCURRENCY: '65536', ...o.server?.env }, ...(o.dist ? { dist: o.dist } : {}) },
  );
  await waitHttp(server, `${url}/health`);
  const workers: Child[] = [];
  const addWorker = async (): Promise<Child> => {
    const n = workers.length + 1;
    const w = spawnCli(
      `${label}-worker${n}`,
      'worker.js',
      [
        '--proxy-url', url,
        '--worker-secret', SECRET,
        '--backend-url', backendUrl,
        '--models', MODEL,
        '--worker-name', `${label}-worker${n}`,
        '--max-concurrency', String(o.maxConcurrency ?? 4096),
        '--log-level', logLevel,
      ],
      { ...o.worker, ...(o.dist ? { dist: o.dist } : {}) },
    );
    workers.push(w);
    await waitHttp(server, `${url}/health`, (b) => (b as { workers_connected?: number }).workers_connected === n);
    return w;
  };
  for (let i = 0; i < (o.workers ?? 1); i++) await addWorker();
  return { url, server, workers, addWorker };
}

/** A yardstick in the relay's place: its entry URL and its processes. */
export interface Yardstick {
  url: string;
  procs: Child[];
}

/** Runs a bench script (TypeScript, through tsx) that prints a line once it listens. */
async function startScript(name: string, script: string, args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const child = new Child(name, proc);
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', () => reject(new Error(`${name} exited early`)));
  });
  return child;
}

/** The floor any two-process relay pays: client → pipe → pipe → backend, each pipe a process that
 * moves bytes without reading them (bench/tcp-forwarder.ts). Same process count as server + worker. */
export async function startPipes(backendUrl: string): Promise<Yardstick> {
  const [inner, outer] = [await freePort(), await freePort()];
  const pipe2 = await startScript('pipe2', 'tcp-forwarder.ts', [String(inner), new URL(backendUrl).port]);
  const pipe1 = await startScript('pipe1', 'tcp-forwarder.ts', [String(outer), String(inner)]);
  return { url: `http://127.0.0.1:${outer}`, procs: [pipe2, pipe1] };
}

/** The simplest one-process Node proxy (bench/node-proxy.ts) in front of the backend. */
export async function startNodeProxy(backendUrl: string): Promise<Yardstick> {
  const port = await freePort();
  return { url: `http://127.0.0.1:${port}`, procs: [await startScript('node-proxy', 'node-proxy.ts', [String(port), backendUrl])] };
}
