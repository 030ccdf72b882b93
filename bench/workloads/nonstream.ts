// Workload 1, non-streaming small chat completions, direct vs relayed, interleaved:
// latency p50/p99 in an open loop at 1,000 req/s (medians over interleaved pairs of rounds), CPU
// per request of each process, and saturated throughput in a closed loop at 16 and 64 connections
// (wrk when installed).
import { cpuPerUnit, withCpu } from '../cpu.js';
import { closedLoop, newPool, openLoop, type LoadResult } from '../http-load.js';
import { MODEL, startNodeProxy, startPipes } from '../cluster.js';
import { interleave } from '../interleave.js';
import { hasWrk, wrkClosedLoop } from '../wrk.js';
import { concat, pairedMedian, round, summarize } from '../stats.js';
import { addedRow, pairedRow, ratioRow, type Row, type Workload } from '../workload.js';

/** With the floor: the same load through two byte-pipe processes (see cluster.startPipes). */
const PATHS = ['direct', 'relay'] as const;
const PATHS_AND_FLOOR = ['direct', 'relay', 'pipes', 'proxy'] as const;
type Path = (typeof PATHS_AND_FLOOR)[number];
const FLOOR = 'through 2 byte pipes instead (the floor)';
const PROXY = 'through a one-process node:http + undici proxy instead';
const RATE = 1000;

export const nonstream: Workload = {
  name: 'nonstream',
  title: 'Non-streaming chat (8 tokens, no generation delay)',
  async run(ctx) {
    const backend = await ctx.startBackend();
    const relay = await ctx.startRelay(backend.url);
    const pipes = await startPipes(backend.url);
    const proxy = await startNodeProxy(backend.url);
    const origin = { direct: backend.url, relay: relay.url, pipes: pipes.url, proxy: proxy.url };
    const q = ctx.quick;
    const rows: Row[] = [];
    const data: Record<string, unknown> = {};

    // open loop: latency at a fixed unsaturated rate
    const pools = { direct: newPool(origin.direct, 128), relay: newPool(origin.relay, 128), pipes: newPool(origin.pipes, 128), proxy: newPool(origin.proxy, 128) };
    // Warm-up: connections, JIT, and the young processes' first heap growth (their early scavenges
    // pause 5–20 ms and would otherwise land in the first rounds' p99). We measure steady state.
    for (const p of PATHS_AND_FLOOR) await openLoop(pools[p], RATE, q ? 300 : 4000);
    const roundMs = q ? 1000 : 3000;
    ctx.log(`open loop ${RATE} req/s: ${q ? 2 : 5} pairs of ${roundMs} ms rounds`);
    const pids = {
      direct: { client: process.pid, backend: backend.proc.pid },
      relay: { client: process.pid, backend: backend.proc.pid, server: relay.server.pid, worker: relay.workers[0]!.pid },
      pipes: { client: process.pid, backend: backend.proc.pid, pipe1: pipes.procs[1]!.pid, pipe2: pipes.procs[0]!.pid },
      proxy: { client: process.pid, backend: backend.proc.pid, proxy: proxy.procs[0]!.pid },
    };
    const measured = await interleave(PATHS_AND_FLOOR, q ? 2 : 5, (p) => withCpu(pids[p], () => openLoop(pools[p], RATE, roundMs)));
    const open = { direct: measured.direct.map((m) => m.result), relay: measured.relay.map((m) => m.result) };
    const cpu = {
      direct: cpuPerUnit(measured.direct, open.direct.reduce((a, r) => a + r.completed, 0)),
      relay: cpuPerUnit(measured.relay, open.relay.reduce((a, r) => a + r.completed, 0)),
    };
    const total = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);
    const lat = { direct: summarize(concat(open.direct.map((r) => r.latencies))), relay: summarize(concat(open.relay.map((r) => r.latencies))) };
    const sched = { direct: summarize(concat(open.direct.map((r) => r.fromSchedule!))), relay: summarize(concat(open.relay.map((r) => r.fromSchedule!))) };
    const rounds = { direct: open.direct.map((r) => summarize(r.latencies)), relay: open.relay.map((r) => summarize(r.latencies)) };
    const floorRounds = measured.pipes.map((m) => summarize(m.result.latencies));
    const proxyRounds = measured.proxy.map((m) => summarize(m.result.latencies));
    for (const [p, max] of [['p50', 0.5], ['p99', 2]] as const) {
      rows.push(pairedRow(`latency ${p} @ ${RATE} req/s`, 'ms', pairedMedian(rounds.direct, rounds.relay, p), max));
      rows.push(pairedRow(`  ${FLOOR}`, 'ms', pairedMedian(rounds.direct, floorRounds, p)));
      rows.push(pairedRow(`  ${PROXY}`, 'ms', pairedMedian(rounds.direct, proxyRounds, p)));
    }
    rows.push(addedRow(`CPU per request, all processes @ ${RATE} req/s`, 'µs', total(cpu.direct), total(cpu.relay)));
    for (const who of ['server', 'worker'] as const) {
      const us = cpu.relay[who]!;
      rows.push({ metric: `  of which relay ${who}`, unit: 'µs', relay: us, result: us, resultKind: 'value' });
    }
    const baseline = (ms: typeof measured.pipes): number => ms.reduce((a, m) => a + m.result.completed, 0);
    const floor = { perRoundLatencyMs: floorRounds, cpuUsPerRequest: cpuPerUnit(measured.pipes, baseline(measured.pipes)) };
    const nodeProxy = { perRoundLatencyMs: proxyRounds, cpuUsPerRequest: cpuPerUnit(measured.proxy, baseline(measured.proxy)) };
    rows.push({ metric: `  CPU per request of the one-process proxy`, unit: 'µs', relay: nodeProxy.cpuUsPerRequest['proxy']!, result: nodeProxy.cpuUsPerRequest['proxy']!, resultKind: 'value' });
    data['openLoop'] = { rate: RATE, roundMs, pooledLatencyMs: lat, perRoundLatencyMs: rounds, fromScheduleMs: sched, cpuUsPerRequest: cpu, errors: errs(open), floor, nodeProxy };
    await Promise.all(Object.values(pools).map((p) => p.close()));

    // closed loop: saturated throughput, from wrk when installed (a light client leaves the relay the
    // CPU a remote client would), else from the Node client
    const closed: Record<string, unknown> = { tool: hasWrk() ? 'wrk -t1' : 'node (undici)' };
    if (!hasWrk()) ctx.log('wrk not found (apt install wrk): saturated throughput from the Node client, which takes a core itself');
    for (const conns of [16, 64]) {
      const ms = q ? 1000 : 3000;
      const cp = hasWrk() ? undefined : { direct: newPool(origin.direct, conns), relay: newPool(origin.relay, conns), pipes: newPool(origin.pipes, conns), proxy: newPool(origin.proxy, conns) };
      const load = (p: Path, roundMs: number): Promise<LoadResult> => (cp ? closedLoop(cp[p], conns, roundMs) : wrkClosedLoop(origin[p], conns, roundMs / 1000));
      for (const p of PATHS_AND_FLOOR) await load(p, cp ? 500 : 1000);
      ctx.log(`closed loop ${conns} connections (${closed['tool']}): ${q ? 1 : 3} pairs of ${ms} ms rounds`);
      const res = await interleave(PATHS_AND_FLOOR, q ? 1 : 3, (p) => load(p, ms));
      const rps = (rs: LoadResult[]): number => rs.reduce((a, r) => a + r.completed, 0) / (rs.reduce((a, r) => a + r.elapsedMs, 0) / 1000);
      const tput = { direct: rps(res.direct), relay: rps(res.relay), pipes: rps(res.pipes), proxy: rps(res.proxy) };
      rows.push(ratioRow(`throughput, ${conns} connections${cp ? ' (Node client)' : ''}`, 'req/s', tput.direct, tput.relay, 0.5));
      rows.push(ratioRow(`  ${FLOOR}`, 'req/s', tput.direct, tput.pipes));
      rows.push(ratioRow(`  ${PROXY}`, 'req/s', tput.direct, tput.proxy));
      closed[`c${conns}`] = {
        throughput: { direct: round(tput.direct, 0), relay: round(tput.relay, 0), pipes: round(tput.pipes, 0), proxy: round(tput.proxy, 0) },
        ...(cp ? { latencyMs: { direct: summarize(concat(res.direct.map((r) => r.latencies))), relay: summarize(concat(res.relay.map((r) => r.latencies))) } } : {}),
        errors: errs(res),
      };
      if (cp) await Promise.all(Object.values(cp).map((p) => p.close()));
    }
    data['closedLoop'] = closed;

    // Long prompts (agents send tens of KB per request): what the relay costs per request when the
    // body is big, where escaping it into JSON frames would show (binary-frames avoids that).
    if (hasWrk()) {
      const body = bigPrompt();
      const ms = q ? 1000 : 3000;
      ctx.log(`closed loop 16 connections, ${Math.round(body.length / 1024)} KiB prompts: ${q ? 1 : 3} pairs of ${ms} ms rounds`);
      for (const p of PATHS) await wrkClosedLoop(origin[p], 16, 1, body);
      const res = await interleave(PATHS, q ? 1 : 3, (p) => withCpu(pids[p], () => wrkClosedLoop(origin[p], 16, ms / 1000, body)));
      const done = (p: (typeof PATHS)[number]): number => res[p].reduce((a, r) => a + r.result.completed, 0);
      const secs = (p: (typeof PATHS)[number]): number => res[p].reduce((a, r) => a + r.result.elapsedMs, 0) / 1000;
      const kib = `${Math.round(body.length / 1024)} KiB prompts`;
      rows.push(ratioRow(`throughput, 16 connections, ${kib}`, 'req/s', done('direct') / secs('direct'), done('relay') / secs('relay')));
      const cpuBig = cpuPerUnit(res.relay, done('relay'));
      for (const who of ['server', 'worker'] as const) rows.push({ metric: `  CPU per request, relay ${who}, ${kib}`, unit: 'µs', relay: cpuBig[who]!, result: cpuBig[who]!, resultKind: 'value' });
      data['bigPrompt'] = { bytes: body.length, throughput: { direct: round(done('direct') / secs('direct'), 0), relay: round(done('relay') / secs('relay'), 0) }, cpuUsPerRequest: cpuBig };
    }
    return { rows, data };
  },
};

/** A chat request with a long history: about 45 KB of JSON, quotes and all. */
export function bigPrompt(): string {
  const messages = Array.from({ length: 80 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'Some "quoted" text and a few more words. '.repeat(13) }));
  return JSON.stringify({ model: MODEL, messages });
}

function errs(r: Record<string, LoadResult[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.reduce((a, x) => a + x.errors, 0)]));
}
