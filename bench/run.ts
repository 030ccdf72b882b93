// `npm run bench`: starts the simulated backend, a relay server and workers as separate processes,
// runs the selected workloads (each interleaving direct and relayed rounds so machine noise cancels),
// prints a table and writes results JSON, plus the table as Markdown next to it for the README.
// Workloads are modules in the WORKLOADS list below.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_HELP, parseBenchArgs } from './args.js';
import { startBackend, startRelay } from './cluster.js';
import { machineInfo, openFilesLimit } from './machine.js';
import { DIST, ROOT, snapshotDist, stopAll } from './procs.js';
import { markdownTable, textTable, writeJson, type RunReport } from './report.js';
import type { BenchContext, Workload } from './workload.js';
import { cacheRouting } from './workloads/cache-routing.js';
import { llama } from './workloads/llama.js';
import { logging } from './workloads/logging.js';
import { memory } from './workloads/memory.js';
import { nonstream } from './workloads/nonstream.js';
import { saturation } from './workloads/saturation.js';
import { scheduler } from './workloads/scheduler.js';
import { stream } from './workloads/stream.js';

const WORKLOADS: Workload[] = [nonstream, stream, saturation, memory, scheduler, logging, llama, cacheRouting];
const WANT_OPEN_FILES = 16_384;

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2));
  if (args.help) return void process.stdout.write(BENCH_HELP);
  if (args.list) return void process.stdout.write(WORKLOADS.map((w) => `${w.name.padEnd(12)} ${w.title}\n`).join(''));
  const unknown = [...(args.only ?? []), ...args.skip].filter((n) => !WORKLOADS.some((w) => w.name === n));
  if (unknown.length) throw new Error(`unknown workload(s): ${unknown.join(', ')} (see --list)`);
  if (!existsSync(join(DIST, 'cli', 'server.js'))) throw new Error(`${DIST}/cli/server.js is missing: run \`npm run build\` (npm run bench does)`);
  if (reexecWithMoreFiles()) return;
  const dist = snapshotDist();

  const selected = WORKLOADS.filter((w) => (args.only ? args.only.includes(w.name) : true) && !args.skip.includes(w.name));
  const quick = args.quick;
  const out = args.out ?? join(ROOT, 'bench', quick ? 'out/results-quick.json' : 'results.json');
  const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);
  const ctx: BenchContext = { quick, log, startBackend, startRelay };
  const report: RunReport = { machine: machineInfo(ROOT), mode: quick ? 'quick' : 'full', durationSecs: 0, workloads: {} };
  const t0 = Date.now();
  log(`${quick ? 'quick' : 'full'} run: ${selected.map((w) => w.name).join(', ')} (build snapshot in ${dist})`);
  for (const w of selected) {
    const ws = Date.now();
    log(`-- ${w.name}: ${w.title}`);
    try {
      const r = await w.run(ctx);
      report.workloads[w.name] = { ...r, title: w.title, secs: Math.round((Date.now() - ws) / 1000) };
    } catch (err) {
      log(`${w.name} failed: ${(err as Error).stack ?? String(err)}`);
      report.workloads[w.name] = { rows: [], data: null, title: w.title, secs: Math.round((Date.now() - ws) / 1000), error: (err as Error).message };
    } finally {
      await stopAll();
    }
  }
  report.durationSecs = Math.round((Date.now() - t0) / 1000);
  process.stdout.write(`\n${textTable(report)}\n\n`);
  process.stdout.write(`${report.machine.cpuModel}, ${report.machine.cores} cores, Node ${report.machine.node}; ${report.durationSecs} s\n`);
  writeJson(out, report);
  const md = out.replace(/\.json$/, '') + '.md';
  writeFileSync(md, markdownTable(report) + '\n');
  log(`results written to ${out} and ${md}`);
}

/** 5,000 streams need ~5k sockets in several processes: raise the soft fd limit up to the hard one
 * by re-running under `sh -c 'ulimit -n N; exec …'` (children inherit it). True if it re-ran. */
function reexecWithMoreFiles(): boolean {
  const { soft, hard } = openFilesLimit();
  if (soft >= WANT_OPEN_FILES || hard <= soft || process.env['BENCH_REEXEC']) return false;
  const n = Math.min(hard, 65_536);
  const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('sh', ['-c', `ulimit -n ${n} && exec ${argv}`], { stdio: 'inherit', env: { ...process.env, BENCH_REEXEC: '1' } });
  process.exitCode = r.status ?? 1;
  return true;
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  await stopAll();
  process.exit(1);
});
