// A real backend: llama.cpp's llama-server (tiny generated model, 2 slots, 1 thread) direct vs through
// a relay (one server, one worker with --max-concurrency 2, --models auto), at 1 and 2 concurrent
// streams, interleaved. Each stream is a streaming chat completion of exactly MAX_TOKENS tokens
// (ignore_eos). Per stream: time to first content token, and decode rate (tokens after the first over
// the time from first to last token; llama-server's own figure from its final `timings` alongside, to
// tell the relay's delivery from a slower backend), and last token to end of response. Per round: tokens delivered per second, all streams,
// and CPU per token of each process. Skips with a note when llama-server can't be had here.
import { readdirSync, readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { ensureLlama, startLlama } from '../../src/llama/llama-server.js';
import { SECRET } from '../cluster.js';
import { cpuPerUnit, withCpu } from '../cpu.js';
import { interleave } from '../interleave.js';
import { chatEvents } from '../sse-client.js';
import { freePort, spawnCli, waitHttp } from '../procs.js';
import { median, pairedMedian, round, summarize, type Summary } from '../stats.js';
import { addedRow, pairedRow, ratioRow, type BenchContext, type Row, type Workload } from '../workload.js';

const ALIAS = 'tiny';
const SLOTS = 2;
const MAX_TOKENS = 128;
const PATHS = ['direct', 'relay'] as const;
type Path = (typeof PATHS)[number];
const BODY = JSON.stringify({
  model: ALIAS,
  stream: true,
  max_tokens: MAX_TOKENS,
  ignore_eos: true,
  stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'Tell me a story.' }],
});

interface StreamSample {
  ttftMs: number;
  /** Last content token to the end of the response (usage chunk, [DONE], end of body). */
  tailMs: number;
  /** Tokens/s after the first token. */
  decodeRate: number;
  tokens: number;
  /** llama-server's own generation rate for this stream (timings.predicted_per_second). */
  serverRate: number;
}

interface RoundResult {
  streams: StreamSample[];
  errors: number;
  /** The first few failure reasons. */
  reasons: string[];
  /** Completion tokens of all streams over the round's wall time. */
  aggregateRate: number;
}

/** One streaming completion; throws (with a short reason) when it fails or comes back short. */
async function oneStream(pool: Pool): Promise<StreamSample> {
  const t0 = performance.now();
  const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: BODY });
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${(await res.body.text().catch(() => '')).slice(0, 160)}`);
  let first = 0;
  let last = 0;
  let usage = 0;
  let serverRate = NaN;
  type Event = { choices?: { delta?: { content?: string | null } }[]; usage?: { completion_tokens?: number }; timings?: { predicted_per_second?: number } };
  for await (const { ev, at } of chatEvents<Event>(res.body)) {
    if (ev.usage?.completion_tokens !== undefined) usage = ev.usage.completion_tokens;
    if (ev.timings?.predicted_per_second !== undefined) serverRate = ev.timings.predicted_per_second;
    const content = ev.choices?.[0]?.delta?.content;
    if (typeof content === 'string' && content.length > 0) {
      if (first === 0) first = at;
      last = at;
    }
  }
  if (first === 0 || usage < MAX_TOKENS || last <= first) throw new Error(`short stream: ${usage} completion tokens, first token ${first ? 'seen' : 'never seen'}`);
  return { ttftMs: first - t0, tailMs: performance.now() - last, decodeRate: ((usage - 1) * 1000) / (last - first), tokens: usage, serverRate };
}

/** `concurrency` lanes, each running `perLane` streams back to back. */
async function runRound(pool: Pool, concurrency: number, perLane: number): Promise<RoundResult> {
  const out: RoundResult = { streams: [], errors: 0, reasons: [], aggregateRate: 0 };
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < perLane; i++) {
        await oneStream(pool).then(
          (s) => void out.streams.push(s),
          (err: unknown) => {
            out.errors++;
            if (out.reasons.length < 3) out.reasons.push((err as Error).message);
          },
        );
      }
    }),
  );
  const tokens = out.streams.reduce((a, s) => a + s.tokens, 0);
  out.aggregateRate = (tokens * 1000) / (performance.now() - start);
  return out;
}

/** The pid of the process listening with `--port <port>` (startLlama doesn't expose its child), if found. */
function pidByPort(port: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('--port');
      if (i >= 0 && argv[i + 1] === String(port) && argv.some((a) => a.includes('llama-server'))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

interface LevelResult {
  concurrency: number;
  /** CPU µs per completion token, per process. */
  cpuUsPerToken: Record<Path, Record<string, number>>;
  rounds: Record<Path, { ttftMs: Summary; tailMs: Summary; decodeRate: Summary; serverRate: Summary; aggregateRate: number; errors: number; reasons: string[] }[]>;
}

async function measureLevel(
  ctx: BenchContext,
  origin: Record<Path, string>,
  pids: Record<Path, Record<string, number>>,
  concurrency: number,
  pairs: number,
  perLane: number,
): Promise<LevelResult> {
  ctx.log(`${concurrency} stream(s): ${pairs} pair(s) of rounds, ${perLane} streams of ${MAX_TOKENS} tokens per lane`);
  const pools = { direct: new Pool(origin.direct, { connections: concurrency }), relay: new Pool(origin.relay, { connections: concurrency }) };
  try {
    for (const p of PATHS) await runRound(pools[p], concurrency, 2); // warm connections and slots
    const cpu = await interleave(PATHS, pairs, (p) => withCpu(pids[p], () => runRound(pools[p], concurrency, perLane)));
    const measured = { direct: cpu.direct.map((m) => m.result), relay: cpu.relay.map((m) => m.result) };
    const tokens = (rs: RoundResult[]): number => rs.reduce((a, r) => a + r.streams.reduce((b, s) => b + s.tokens, 0), 0);
    const per = (rs: RoundResult[]): LevelResult['rounds']['direct'] =>
      rs.map((r) => ({
        ttftMs: summarize(r.streams.map((s) => s.ttftMs)),
        tailMs: summarize(r.streams.map((s) => s.tailMs)),
        decodeRate: summarize(r.streams.map((s) => s.decodeRate)),
        serverRate: summarize(r.streams.map((s) => s.serverRate).filter(Number.isFinite)),
        aggregateRate: round(r.aggregateRate, 1),
        errors: r.errors,
        reasons: r.reasons,
      }));
    return {
      concurrency,
      cpuUsPerToken: { direct: cpuPerUnit(cpu.direct, tokens(measured.direct)), relay: cpuPerUnit(cpu.relay, tokens(measured.relay)) },
      rounds: { direct: per(measured.direct), relay: per(measured.relay) },
    };
  } finally {
    await Promise.all(Object.values(pools).map((p) => p.close()));
  }
}

/** A throughput row from interleaved pairs: columns are medians over rounds, the result the median of
 * per-pair ratios (for an even count the upper middle, so a slowdown must show in both middle pairs,
 * as stats.pairedMedian does for differences). */
function pairedRatioRow(metric: string, direct: number[], relay: number[]): Row {
  const ratios = direct.map((d, i) => relay[i]! / d).sort((a, b) => a - b);
  return { ...ratioRow(metric, '', median(direct), median(relay)), result: ratios[Math.floor(ratios.length / 2)]! };
}

const total = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);

function levelRows(l: LevelResult): Row[] {
  const c = l.concurrency;
  const s = `${c} stream${c > 1 ? 's' : ''}`;
  const { direct, relay } = l.rounds;
  const pm = (k: 'ttftMs' | 'tailMs', p: 'p50' | 'p99'): { a: number; b: number; diff: number } => pairedMedian(direct.map((r) => r[k]), relay.map((r) => r[k]), p);
  return [
    pairedRow(`TTFT p50, ${s}`, 'ms', pm('ttftMs', 'p50')),
    pairedRow(`TTFT p99, ${s}`, 'ms', pm('ttftMs', 'p99')),
    pairedRow(`last token → end of response p50, ${s}`, 'ms', pm('tailMs', 'p50')),
    pairedRatioRow(`tokens/s per stream (decode, p50), ${s}`, direct.map((r) => r.decodeRate.p50), relay.map((r) => r.decodeRate.p50)),
    pairedRatioRow(`tokens/s aggregate, ${s}`, direct.map((r) => r.aggregateRate), relay.map((r) => r.aggregateRate)),
    pairedRatioRow(`  llama-server's own decode tokens/s (p50), ${s}`, direct.map((r) => r.serverRate.p50), relay.map((r) => r.serverRate.p50)),
    addedRow(`CPU per token, all processes, ${s}`, 'µs', total(l.cpuUsPerToken.direct), total(l.cpuUsPerToken.relay)),
    ...(['llama', 'server', 'worker'] as const)
      .filter((who) => l.cpuUsPerToken.relay[who] !== undefined)
      .map((who): Row => ({ metric: `  of which ${who === 'llama' ? 'llama-server' : `relay ${who}`}`, unit: 'µs', relay: l.cpuUsPerToken.relay[who]!, result: l.cpuUsPerToken.relay[who]!, resultKind: 'value' })),
  ];
}

export const llama: Workload = {
  name: 'llama',
  title: `llama.cpp llama-server (tiny model, ${SLOTS} slots), streaming ${MAX_TOKENS} tokens`,
  async run(ctx) {
    const ready = await ensureLlama();
    if ('skip' in ready) {
      ctx.log(`llama: skipped: ${ready.skip}`);
      return { rows: [], notes: [`skipped: ${ready.skip}`], data: { skipped: ready.skip } };
    }
    const llm = await startLlama({ alias: ALIAS, slots: SLOTS });
    try {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const server = spawnCli('llama-relay-server', 'server.js', ['--listen', `127.0.0.1:${port}`, '--worker-secret', SECRET, '--max-queue-len', '0', '--log-level', 'warn']);
      await waitHttp(server, `${url}/health`);
      const worker = spawnCli('llama-relay-worker1', 'worker.js', [
        '--proxy-url', url,
        '--worker-secret', SECRET,
        '--backend-url', llm.url,
        '--models', 'auto',
        '--worker-name', 'llama-relay-worker1',
        '--max-concurrency', String(SLOTS),
        '--log-level', 'warn',
      ]);
      // the worker is ready once the server routes the model it read from llama-server
      await waitHttp(server, `${url}/v1/models`, (b) => ((b as { data?: { id: string }[] }).data ?? []).some((m) => m.id === ALIAS));
      const origin = { direct: llm.url, relay: url };
      const llamaPid = pidByPort(llm.port);
      const backend: Record<string, number> = llamaPid ? { llama: llamaPid } : {};
      const pids = { direct: { client: process.pid, ...backend }, relay: { client: process.pid, ...backend, server: server.pid, worker: worker.pid } };
      const rows: Row[] = [];
      const notes: string[] = [];
      const levels: LevelResult[] = [];
      for (const c of [1, 2]) {
        const l = ctx.quick ? await measureLevel(ctx, origin, pids, c, 2, 4) : await measureLevel(ctx, origin, pids, c, 8, 16);
        levels.push(l);
        rows.push(...levelRows(l));
        const errs = (p: Path): number => l.rounds[p].reduce((a, r) => a + r.errors, 0);
        if (errs('direct') + errs('relay') > 0) {
          const why = [...new Set(PATHS.flatMap((p) => l.rounds[p].flatMap((r) => r.reasons.map((m) => `${p}: ${m}`))))].slice(0, 3);
          notes.push(`${c} stream(s): ${errs('direct')} direct / ${errs('relay')} relayed streams failed (${why.join('; ')})`);
        }
      }
      notes.push(`tokens/s rows: result is relay / direct (median of per-pair ratios); llama-server -t 1, ${SLOTS} slots, ignore_eos, max_tokens ${MAX_TOKENS}`);
      return { rows, notes, data: { maxTokens: MAX_TOKENS, slots: SLOTS, levels } };
    } finally {
      await llm.close();
    }
  },
};
