// Workload 5, the cost of info-level logging (one JSON line per request, written to a file): two
// relays on one backend, one at --log-level warn and one at info, interleaved; saturated throughput
// at 64 connections and p50 latency at 1,000 req/s.
import { closedLoop, newPool, openLoop, type LoadResult } from '../http-load.js';
import { interleave } from '../interleave.js';
import { concat, summarize } from '../stats.js';
import type { Row, Workload } from '../workload.js';

const VARIANTS = ['warn', 'info'] as const;

export const logging: Workload = {
  name: 'logging',
  title: 'Relay at --log-level info vs warn (direct = warn, relay = info)',
  async run(ctx) {
    const backend = await ctx.startBackend();
    const warn = await ctx.startRelay(backend.url, { label: 'relay-warn', logLevel: 'warn' });
    const info = await ctx.startRelay(backend.url, { label: 'relay-info', logLevel: 'info' });
    const url = { warn: warn.url, info: info.url };
    const ms = ctx.quick ? 1000 : 3000;
    const pairs = ctx.quick ? 1 : 3;

    const cp = { warn: newPool(url.warn, 64), info: newPool(url.info, 64) };
    for (const v of VARIANTS) await closedLoop(cp[v], 64, 500);
    ctx.log(`closed loop 64 connections, warn vs info: ${pairs} pair(s)`);
    const closed = await interleave(VARIANTS, pairs, (v) => closedLoop(cp[v], 64, ms));
    const rps = (rs: LoadResult[]): number => rs.reduce((a, r) => a + r.completed, 0) / (rs.reduce((a, r) => a + r.elapsedMs, 0) / 1000);

    const op = { warn: newPool(url.warn, 128), info: newPool(url.info, 128) };
    ctx.log(`open loop 1000 req/s, warn vs info: ${pairs} pair(s)`);
    const open = await interleave(VARIANTS, pairs, (v) => openLoop(op[v], 1000, ms));
    const p50 = (rs: LoadResult[]): number => summarize(concat(rs.map((r) => r.latencies))).p50;
    await Promise.all([...Object.values(cp), ...Object.values(op)].map((p) => p.close()));

    const rows: Row[] = [
      { metric: 'relay throughput, 64 connections', unit: 'req/s', direct: rps(closed.warn), relay: rps(closed.info), result: rps(closed.info) / rps(closed.warn), resultKind: 'ratio' },
      { metric: 'relay latency p50 @ 1000 req/s', unit: 'ms', direct: p50(open.warn), relay: p50(open.info), result: p50(open.info) - p50(open.warn), resultKind: 'added' },
    ];
    return { rows, notes: ["'direct' column = relay at warn, 'relay' column = relay at info; logs go to files in bench/out/logs/"], data: { throughput: { warn: rps(closed.warn), info: rps(closed.info) }, latencyP50Ms: { warn: p50(open.warn), info: p50(open.info) } } };
  },
};
