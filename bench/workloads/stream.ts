// Workload 2a, streaming at a 20 ms token cadence, direct vs relayed, interleaved, at 20, 200 and
// 1,000 concurrent streams: added time-to-first-token and added gap between consecutive token events
// (p50/p99 of each path's distribution, median over interleaved pairs of rounds; the backend's
// cadence is 20 ms on both paths), chunks delivered per second, and CPU per chunk of each process.
import { startPipes } from '../cluster.js';
import { cpuPerUnit, withCpu } from '../cpu.js';
import { interleave } from '../interleave.js';
import { streamPool, streamRound, type StreamResult } from '../sse-client.js';
import { pairedMedian, round, summarize, type Summary } from '../stats.js';
import { addedRow, pairedRow, ratioRow, type BenchContext, type Row, type Workload } from '../workload.js';

export const PATHS = ['direct', 'relay'] as const;
export const DELAY_MS = 20;

export interface LevelResult {
  concurrency: number;
  /** Per round, for paired medians. */
  rounds: Record<'direct' | 'relay', { ttftMs: Summary; gapMs: Summary }[]>;
  ttftMs: Record<'direct' | 'relay', Summary>;
  gapMs: Record<'direct' | 'relay', Summary>;
  eventRate: Record<'direct' | 'relay', number>;
  streams: Record<'direct' | 'relay', number>;
  errors: Record<'direct' | 'relay', number>;
  /** CPU µs per token event received, per process. */
  cpuUsPerChunk: Record<'direct' | 'relay', Record<string, number>>;
}

/** The processes whose CPU a round measures, per path. */
export interface Pids {
  direct: Record<string, number>;
  relay: Record<string, number>;
}

/** Interleaved rounds at one concurrency; shared with the saturation search. */
export async function measureLevel(
  ctx: BenchContext,
  origin: Record<'direct' | 'relay', string>,
  pids: Pids,
  concurrency: number,
  pairs: number,
  tokens: number,
  measureMs: number,
): Promise<LevelResult> {
  const pools = { direct: streamPool(origin.direct, concurrency), relay: streamPool(origin.relay, concurrency) };
  ctx.log(`${concurrency} streams: ${pairs} pair(s) of rounds, ${tokens} tokens @ ${DELAY_MS} ms, ${measureMs} ms measured`);
  const load = { concurrency, tokens, delayMs: DELAY_MS, measureMs };
  const measured = await interleave(PATHS, pairs, (p) => withCpu(pids[p], () => streamRound(pools[p], load)));
  const res = { direct: measured.direct.map((m) => m.result), relay: measured.relay.map((m) => m.result) };
  const chunks = (rs: StreamResult[]): number => rs.reduce((a, r) => a + r.totalEvents, 0);
  await Promise.all(Object.values(pools).map((p) => p.close()));
  const pick = <T>(f: (rs: StreamResult[]) => T): Record<'direct' | 'relay', T> => ({ direct: f(res.direct), relay: f(res.relay) });
  const perRound = (rs: StreamResult[]): { ttftMs: Summary; gapMs: Summary }[] => rs.map((r) => ({ ttftMs: summarize(r.ttft), gapMs: summarize(r.gaps) }));
  return {
    concurrency,
    rounds: { direct: perRound(res.direct), relay: perRound(res.relay) },
    ttftMs: pick((rs) => summarize(rs.flatMap((r) => r.ttft))),
    gapMs: pick((rs) => summarize(rs.flatMap((r) => r.gaps))),
    eventRate: pick((rs) => round(rs.reduce((a, r) => a + r.eventRate, 0) / rs.length, 0)),
    streams: pick((rs) => rs.reduce((a, r) => a + r.streams, 0)),
    errors: pick((rs) => rs.reduce((a, r) => a + r.errors, 0)),
    cpuUsPerChunk: { direct: cpuPerUnit(measured.direct, chunks(res.direct)), relay: cpuPerUnit(measured.relay, chunks(res.relay)) },
  };
}

const total = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);

export function pidsOf(backend: { proc: { pid: number } }, relay: { server: { pid: number }; workers: { pid: number }[] }): Pids {
  return {
    direct: { client: process.pid, backend: backend.proc.pid },
    relay: { client: process.pid, backend: backend.proc.pid, server: relay.server.pid, worker: relay.workers[0]!.pid },
  };
}

/** Median over interleaved pairs of rounds (see stats.pairedMedian). */
export function paired(l: LevelResult, what: 'ttftMs' | 'gapMs', p: 'p50' | 'p99'): { a: number; b: number; diff: number } {
  return pairedMedian(l.rounds.direct.map((r) => r[what]), l.rounds.relay.map((r) => r[what]), p);
}

export function levelRows(l: LevelResult, targetMs?: number): Row[] {
  const c = l.concurrency;
  const cpu = l.cpuUsPerChunk;
  return [
    pairedRow(`TTFT p50, ${c} streams`, 'ms', paired(l, 'ttftMs', 'p50')),
    pairedRow(`TTFT p99, ${c} streams`, 'ms', paired(l, 'ttftMs', 'p99'), targetMs),
    pairedRow(`inter-chunk p50, ${c} streams`, 'ms', paired(l, 'gapMs', 'p50')),
    pairedRow(`inter-chunk p99, ${c} streams`, 'ms', paired(l, 'gapMs', 'p99'), targetMs),
    ratioRow(`chunks delivered per s, ${c} streams (offered ${(c * 1000) / DELAY_MS})`, 'chunks/s', l.eventRate.direct, l.eventRate.relay),
    addedRow(`CPU per chunk, all processes, ${c} streams`, 'µs', total(cpu.direct), total(cpu.relay)),
    ...(['server', 'worker'] as const).map((who): Row => ({ metric: `  of which relay ${who}`, unit: 'µs', relay: cpu.relay[who]!, result: cpu.relay[who]!, resultKind: 'value' })),
  ];
}

export const stream: Workload = {
  name: 'stream',
  title: `Streaming, a token every ${DELAY_MS} ms`,
  async run(ctx) {
    const backend = await ctx.startBackend();
    const relay = await ctx.startRelay(backend.url);
    const origin = { direct: backend.url, relay: relay.url };
    const pids = pidsOf(backend, relay);
    const rows: Row[] = [];
    const levels: LevelResult[] = [];
    const notes: string[] = [];
    let floor: LevelResult | undefined;
    for (const c of [20, 200, 1000]) {
      const l = ctx.quick ? await measureLevel(ctx, origin, pids, c, 1, 15, 700) : await measureLevel(ctx, origin, pids, c, 3, 50, 3000);
      levels.push(l);
      rows.push(...levelRows(l, c === 200 ? 5 : undefined));
      if (l.errors.direct + l.errors.relay > 0) notes.push(`${c} streams: ${l.errors.direct} direct / ${l.errors.relay} relayed streams failed`);
      if (c === 200) {
        // The floor at the target level: the same streams through two byte-pipe processes.
        const pipes = await startPipes(backend.url);
        const floorPids = { direct: pids.direct, relay: { client: process.pid, backend: backend.proc.pid, pipe1: pipes.procs[1]!.pid, pipe2: pipes.procs[0]!.pid } };
        const origins = { direct: backend.url, relay: pipes.url };
        const f = ctx.quick ? await measureLevel(ctx, origins, floorPids, c, 1, 15, 700) : await measureLevel(ctx, origins, floorPids, c, 3, 50, 3000);
        floor = f;
        rows.push(pairedRow(`  TTFT p99, ${c} streams, through 2 byte pipes instead (the floor)`, 'ms', paired(f, 'ttftMs', 'p99')));
        rows.push(pairedRow(`  inter-chunk p99, ${c} streams, through 2 byte pipes instead (the floor)`, 'ms', paired(f, 'gapMs', 'p99')));
        await Promise.all(pipes.procs.map((p) => p.stop()));
      }
    }
    return { rows, notes, data: { delayMs: DELAY_MS, levels, floor200: floor } };
  },
};
