// Workload 3, server memory per open stream: resident memory (VmRSS) of the server process at idle
// and while 1,000 and 5,000 slow streams are held open through the relay (a token every 5 s).
// A worker is capped at 4,096 concurrent requests by the server, so enough workers are started.
// Also: server RSS growth under sustained non-streaming load (what finished requests leave behind).
import { setMaxListeners } from 'node:events';
import { MODEL } from '../cluster.js';
import { openFilesLimit } from '../machine.js';
import { closedLoop, newPool } from '../http-load.js';
import { fdCount, rssKb, sleep } from '../procs.js';
import { streamPool } from '../sse-client.js';
import { median, round } from '../stats.js';
import type { Row, Workload } from '../workload.js';

const PER_WORKER = 4096;
const BODY = JSON.stringify({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'Talk slowly.' }] });
// 100 tokens 5 s apart: open for minutes, quiet meanwhile (the mock builds every token string upfront,
// so a huge token count would make the backend the bottleneck)
const HEADERS = { 'content-type': 'application/json', 'x-mock-tokens': '100', 'x-mock-delay-ms': '5000', 'x-mock-first-delay-ms': '0' };

interface Sample {
  streams: number;
  serverRssKb: number;
  workerRssKb: number[];
  serverFds: number;
}

export const memory: Workload = {
  name: 'memory',
  title: 'Server memory with open streams',
  async run(ctx) {
    const targets = ctx.quick ? [200, 600] : [1000, 5000];
    const max = targets[targets.length - 1]!;
    const notes: string[] = [];
    const lim = openFilesLimit();
    // each process holds one socket per stream (client, server, worker, backend) plus its own files
    if (lim.soft < max + 1000) {
      notes.push(`skipped: ulimit -n is ${lim.soft}, ${max + 1000} needed per process`);
      return { rows: [], notes, data: { skipped: true, openFilesLimit: lim } };
    }
    const backend = await ctx.startBackend();
    const relay = await ctx.startRelay(backend.url, { workers: Math.ceil(max / PER_WORKER) });
    const pool = streamPool(relay.url, max);
    const ac = new AbortController();
    setMaxListeners(0, ac.signal);
    const sample = async (streams: number): Promise<Sample> => {
      const s: number[] = [];
      const w: number[][] = relay.workers.map(() => []);
      for (let i = 0; i < 5; i++) {
        s.push(rssKb(relay.server.pid));
        relay.workers.forEach((wk, j) => w[j]!.push(rssKb(wk.pid)));
        await sleep(200);
      }
      return { streams, serverRssKb: median(s), workerRssKb: w.map(median), serverFds: await fdCount(relay.server.pid) };
    };

    // warm up the path once, then idle
    await openStreams(pool, 10, ac.signal);
    ac.abort();
    await sleep(1500);
    const samples: Sample[] = [await sample(0)];
    const ac2 = new AbortController();
    setMaxListeners(0, ac2.signal);
    let open = 0;
    for (const n of targets) {
      ctx.log(`opening streams up to ${n}`);
      await openStreams(pool, n - open, ac2.signal);
      open = n;
      await sleep(2000); // settle
      samples.push(await sample(n));
    }
    ac2.abort();
    await pool.destroy();

    const idle = samples[0]!.serverRssKb;
    const rows: Row[] = samples.map((s) => ({ metric: `server RSS, ${s.streams} open streams`, unit: 'MiB', relay: s.serverRssKb / 1024, result: s.serverRssKb / 1024, resultKind: 'value' }));
    const perStream = (s: Sample): number => (s.serverRssKb - idle) / s.streams;
    for (const s of samples.slice(1)) {
      const kb = perStream(s);
      rows.push({ metric: `server memory per stream, ${s.streams} open`, unit: 'KiB', relay: kb, result: kb, resultKind: 'value', target: '≤ 64 KiB', meets: kb <= 64 });
    }
    const a = samples[1]!;
    const b = samples[samples.length - 1]!;
    const marginal = (b.serverRssKb - a.serverRssKb) / (b.streams - a.streams);
    rows.push({ metric: `server marginal memory per stream (${a.streams}→${b.streams})`, unit: 'KiB', relay: marginal, result: marginal, resultKind: 'value', target: '≤ 64 KiB', meets: marginal <= 64 });
    const wIdle = samples[0]!.workerRssKb.reduce((x, y) => x + y, 0);
    const wMax = b.workerRssKb.reduce((x, y) => x + y, 0);
    rows.push({ metric: `worker memory per stream, ${b.streams} open (all workers)`, unit: 'KiB', relay: (wMax - wIdle) / b.streams, result: (wMax - wIdle) / b.streams, resultKind: 'value' });
    const fresh = await ctx.startRelay(backend.url, { label: 'relay-growth' });
    const growth = await sustainedGrowth(ctx, fresh.url, fresh.server.pid);
    rows.push({ metric: `server RSS growth per 10k finished requests (${growth.requests} in ${growth.secs} s)`, unit: 'KiB', relay: growth.kbPer10k, result: growth.kbPer10k, resultKind: 'value' });
    notes.push(`${relay.workers.length} worker(s): the server caps a worker's max_concurrent at ${PER_WORKER}`);
    notes.push('RSS includes garbage not yet collected; per stream = (RSS − idle RSS) / streams');
    return { rows, notes, data: { growth, samples, perStreamKb: samples.slice(1).map((s) => round(perStream(s))), marginalKb: round(marginal) } };
  },
};

/** Slope of server RSS under saturated non-streaming load: measured from the end of a first stretch
 * (heap and JIT warm) to the end of a second one. */
async function sustainedGrowth(ctx: { quick: boolean; log(m: string): void }, url: string, pid: number): Promise<{ requests: number; secs: number; rssBeforeKb: number; rssAfterKb: number; kbPer10k: number }> {
  const pool = newPool(url, 64);
  const secs = ctx.quick ? 4 : 20;
  ctx.log(`sustained non-streaming load: ${ctx.quick ? 2 : 5} s warm-up, then ${secs} s`);
  await closedLoop(pool, 64, ctx.quick ? 2000 : 5000);
  const rssBeforeKb = rssKb(pid);
  const r = await closedLoop(pool, 64, secs * 1000);
  const rssAfterKb = rssKb(pid);
  await pool.close();
  return { requests: r.completed, secs, rssBeforeKb, rssAfterKb, kbPer10k: ((rssAfterKb - rssBeforeKb) / r.completed) * 10_000 };
}

/** Opens `n` more never-ending streams (in batches, so no accept backlog overflows) and resolves once
 * each has delivered its first event. The streams stay open until `signal` aborts. */
async function openStreams(pool: ReturnType<typeof streamPool>, n: number, signal: AbortSignal): Promise<void> {
  const BATCH = 250;
  const firsts: Promise<void>[] = [];
  for (let i = 0; i < n; i += BATCH) {
    for (let j = i; j < Math.min(n, i + BATCH); j++) {
      firsts.push(
        pool.request({ method: 'POST', path: '/v1/chat/completions', headers: HEADERS, body: BODY, signal }).then(
          (res) =>
            new Promise<void>((resolve, reject) => {
              if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
              res.body.once('data', () => resolve());
              res.body.on('data', () => {}); // keep reading: a live client
              res.body.on('error', () => {}); // aborted later on purpose
            }),
        ),
      );
    }
    await sleep(50);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${n} streams not all open after 60 s`)), 60_000)));
  await Promise.race([Promise.all(firsts), timeout]).finally(() => clearTimeout(timer));
}
