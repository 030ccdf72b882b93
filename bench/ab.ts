// A/B: `node --import tsx bench/ab.ts [/path/to/other/dist] [--b-node-args="--flag ..."] [--secs N] [--pairs N]`
// runs two relays on one simulated backend, A from this tree's dist/ and B from the given build (say,
// a patched copy of src built elsewhere) and/or with other node flags, and interleaves rounds of saturated non-streaming load (64 connections) and
// 200 streams at a 20 ms cadence, reporting throughput, stream latencies and CPU per request/chunk.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBackend, startRelay, type Relay } from './cluster.js';
import { cpuPerUnit, withCpu } from './cpu.js';
import { closedLoop, newPool, type LoadResult } from './http-load.js';
import { hasWrk, wrkClosedLoop } from './wrk.js';
import { interleave } from './interleave.js';
import { DIST, stopAll } from './procs.js';
import { streamPool, streamRound } from './sse-client.js';
import { summarize } from './stats.js';
import { bigPrompt } from './workloads/nonstream.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { secs: { type: 'string' }, pairs: { type: 'string' }, 'b-node-args': { type: 'string' }, conns: { type: 'string' }, 'no-streams': { type: 'boolean' }, 'long-prompt': { type: 'boolean' } } });
  // --long-prompt: the non-streaming rounds send the bench's ~45 KB chat history (wrk only).
  const body = values['long-prompt'] ? bigPrompt() : undefined;
  const conns = Number(values.conns ?? 64);
  const other = positionals[0] ?? DIST;
  const bArgs = values['b-node-args']?.split(' ').filter(Boolean) ?? [];
  if (!positionals[0] && !bArgs.length) throw new Error('usage: bench/ab.ts [/path/to/other/dist] [--b-node-args="..."] [--secs N] [--pairs N]');
  const ms = Number(values.secs ?? 3) * 1000;
  const pairs = Number(values.pairs ?? 3);
  const backend = await startBackend();
  const relays: Record<'A' | 'B', Relay> = {
    A: await startRelay(backend.url, { label: 'relay-A' }),
    B: await startRelay(backend.url, { label: 'relay-B', dist: resolve(other), server: { nodeArgs: bArgs }, worker: { nodeArgs: bArgs } }),
  };
  const pids = (r: Relay): Record<string, number> => ({ server: r.server.pid, worker: r.workers[0]!.pid });
  const V = ['A', 'B'] as const;
  process.stdout.write(`A = ${DIST}\nB = ${resolve(other)} ${bArgs.join(' ')}\n`);

  const np = { A: newPool(relays.A.url, conns), B: newPool(relays.B.url, conns) };
  const nsRound = (v: 'A' | 'B', roundMs: number): Promise<LoadResult> => (hasWrk() ? wrkClosedLoop(relays[v].url, conns, roundMs / 1000, body) : closedLoop(np[v], conns, roundMs));
  for (const v of V) await nsRound(v, 1000);
  const ns = await interleave(V, pairs, (v) => withCpu(pids(relays[v]), () => nsRound(v, ms)));
  for (const v of V) {
    const done = ns[v].reduce((a, r) => a + r.result.completed, 0);
    const secs = ns[v].reduce((a, r) => a + r.result.elapsedMs, 0) / 1000;
    const cpu = cpuPerUnit(ns[v], done);
    process.stdout.write(`${v} non-streaming${body ? `, ${Math.round(body.length / 1024)} KiB prompts` : ''}, ${conns} connections (${hasWrk() ? 'wrk' : 'node client'}): ${Math.round(done / secs)} req/s; CPU µs/request server ${cpu['server']!.toFixed(0)} worker ${cpu['worker']!.toFixed(0)}\n`);
  }

  if (values['no-streams']) {
    await Promise.all(Object.values(np).map((p) => p.close()));
    return void (await stopAll());
  }
  const sp = { A: streamPool(relays.A.url, 200), B: streamPool(relays.B.url, 200) };
  const load = { concurrency: 200, tokens: 25, delayMs: 20, measureMs: ms };
  const st = await interleave(V, pairs, (v) => withCpu(pids(relays[v]), () => streamRound(sp[v], load)));
  for (const v of V) {
    const rs = st[v].map((x) => x.result);
    const ttft = summarize(rs.flatMap((r) => r.ttft));
    const gap = summarize(rs.flatMap((r) => r.gaps));
    const cpu = cpuPerUnit(st[v], rs.reduce((a, r) => a + r.totalEvents, 0));
    const rate = rs.reduce((a, r) => a + r.eventRate, 0) / rs.length;
    process.stdout.write(
      `${v} 200 streams: ${Math.round(rate)} chunks/s; TTFT p50 ${ttft.p50.toFixed(1)} p99 ${ttft.p99.toFixed(1)} ms; gap p50 ${gap.p50.toFixed(1)} p99 ${gap.p99.toFixed(1)} ms; CPU µs/chunk server ${cpu['server']!.toFixed(0)} worker ${cpu['worker']!.toFixed(0)}\n`,
    );
  }
  await Promise.all([...Object.values(np), ...Object.values(sp)].map((p) => p.close()));
  await stopAll();
}

main().catch(async (err: unknown) => {
  process.stderr.write(`ab: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exit(1);
});
