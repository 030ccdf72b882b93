// `node --import tsx bench/profile.ts [nonstream|stream ...] [--secs N]`: runs the relay's server and
// worker under `node --cpu-prof` while driving saturated non-streaming load (64 connections) or 200
// streams at a 20 ms cadence, stops them with SIGTERM so the profiles are written, then summarises
// each profile (bench/out/prof/<scenario>/{server,worker}.cpuprofile and summary.txt).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBackend, startRelay } from './cluster.js';
import { closedLoop, newPool } from './http-load.js';
import { OUT_DIR, stopAll } from './procs.js';
import { formatSummary, summarizeProfile } from './profile-summary.js';
import { streamPool, streamRound } from './sse-client.js';

const SCENARIOS: Record<string, (url: string, secs: number) => Promise<string>> = {
  async nonstream(url, secs) {
    const pool = newPool(url, 64);
    const r = await closedLoop(pool, 64, secs * 1000);
    await pool.close();
    return `${Math.round(r.completed / (r.elapsedMs / 1000))} req/s, ${r.errors} errors`;
  },
  async stream(url, secs) {
    const pool = streamPool(url, 200);
    const r = await streamRound(pool, { concurrency: 200, tokens: 50, delayMs: 20, measureMs: secs * 1000 });
    await pool.close();
    return `${r.streams} streams, ${Math.round(r.eventRate)} chunks/s, ${r.errors} errors`;
  },
};

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { secs: { type: 'string' }, interval: { type: 'string' } } });
  const secs = Number(values.secs ?? 10);
  const names = positionals.length ? positionals : Object.keys(SCENARIOS);
  for (const name of names) {
    const run = SCENARIOS[name];
    if (!run) throw new Error(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}`);
    const dir = join(OUT_DIR, 'prof', name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const prof = (who: string): string[] => ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${who}.cpuprofile`, `--cpu-prof-interval=${values.interval ?? 250}`];
    const backend = await startBackend();
    const relay = await startRelay(backend.url, { server: { nodeArgs: prof('server') }, worker: { nodeArgs: prof('worker') } });
    process.stderr.write(`[profile] ${name}: ${secs} s of load...\n`);
    const what = await run(relay.url, secs);
    process.stderr.write(`[profile] ${name}: ${what}\n`);
    await Promise.all(relay.workers.map((w) => w.stop()));
    await relay.server.stop();
    await stopAll();
    const text = [`scenario ${name}: ${what}`, ...['server', 'worker'].map((who) => formatSummary(summarizeProfile(join(dir, `${who}.cpuprofile`))))].join('\n\n');
    writeFileSync(join(dir, 'summary.txt'), text + '\n');
    process.stdout.write(`${text}\n\n`);
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`profile: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exit(1);
});
