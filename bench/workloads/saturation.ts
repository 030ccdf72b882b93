// Workload 2b, the streaming saturation point: step the number of 20 ms-cadence streams up until the
// relay adds ≥ 10 ms to the p99 gap between token events, and report the total chunk rate there.
// Each step: interleaved pairs (2 in full mode), judged on the median of per-pair differences.
// Bounded: a fixed list of steps and a time budget.
import { DELAY_MS, measureLevel, paired, pidsOf, type LevelResult } from './stream.js';
import { pairedRow, type Row, type Workload } from '../workload.js';

const THRESHOLD_MS = 10;

export const saturation: Workload = {
  name: 'saturation',
  title: `Streaming saturation (relay adds ≥ ${THRESHOLD_MS} ms p99 inter-chunk)`,
  async run(ctx) {
    const backend = await ctx.startBackend();
    const relay = await ctx.startRelay(backend.url);
    const origin = { direct: backend.url, relay: relay.url };
    const steps = ctx.quick ? [100, 400] : [50, 100, 200, 300, 400, 600, 800, 1200, 1600, 2400];
    const budgetMs = ctx.quick ? 15_000 : 150_000;
    const started = Date.now();
    const levels: LevelResult[] = [];
    let hit: LevelResult | undefined;
    for (const c of steps) {
      if (Date.now() - started > budgetMs) break;
      const l = ctx.quick ? await measureLevel(ctx, origin, pidsOf(backend, relay), c, 1, 15, 700) : await measureLevel(ctx, origin, pidsOf(backend, relay), c, 2, 25, 2000);
      levels.push(l);
      const p99 = paired(l, 'gapMs', 'p99');
      ctx.log(`  ${c} streams: ${l.eventRate.relay} chunks/s relayed, p99 gap direct ${p99.a.toFixed(1)} relay ${p99.b.toFixed(1)} ms, added ${p99.diff.toFixed(1)} ms`);
      if (p99.diff >= THRESHOLD_MS) {
        hit = l;
        break;
      }
    }
    const rows: Row[] = levels.map((l) => pairedRow(`p99 inter-chunk, ${l.concurrency} streams (${l.eventRate.relay} chunks/s)`, 'ms', paired(l, 'gapMs', 'p99')));
    const lastGood = hit ? levels[levels.indexOf(hit) - 1] : levels[levels.length - 1];
    rows.push({
      metric: hit ? 'saturation: chunk rate where relay adds ≥ 10 ms p99' : 'not saturated up to (chunks/s)',
      unit: 'chunks/s',
      direct: hit?.eventRate.direct ?? lastGood?.eventRate.direct,
      relay: hit?.eventRate.relay ?? lastGood?.eventRate.relay,
      result: hit?.eventRate.relay ?? lastGood?.eventRate.relay,
      resultKind: 'value',
    });
    const notes = [
      `steps of ${DELAY_MS} ms-cadence streams; chunk rate = token events/s the client received through the relay`,
      ...(lastGood && hit ? [`last step under the threshold: ${lastGood.concurrency} streams, ${lastGood.eventRate.relay} chunks/s`] : []),
    ];
    return { rows, notes, data: { thresholdMs: THRESHOLD_MS, saturatedAt: hit?.concurrency ?? null, levels } };
  },
};
