// Cache-aware against least-loaded routing on real backends: four llama-servers (tiny model, one
// slot, --cache-ram 2: each holds about three ~1,200-token prompts, one in its slot and two in host
// memory, like a GPU box that holds only a few long conversations), each behind its own worker
// (--max-concurrency 1). One relay server per routing mode, both on the same four workers' backends,
// used in turn: rounds alternate between the modes, each round with fresh conversations (a system
// prompt of its own, ~1,100 tokens, and 4 to 8 turns of a short user message and a 24-token reply),
// eight at once, closed loop: more than any one backend holds, and more than there are slots, so
// requests queue. Per turn after the first: prompt tokens served from llama-server's cache
// (timings.cache_n against prompt_n), time to first token; per round: turns per second.
import { Pool } from 'undici';
import { ensureLlama, startLlama, type LlamaServer } from '../../src/llama/llama-server.js';
import { SECRET } from '../cluster.js';
import { interleave } from '../interleave.js';
import { chatEvents } from '../sse-client.js';
import { freePort, spawnCli, waitHttp, type Child } from '../procs.js';
import { median, round, summarize } from '../stats.js';
import { ratioRow, type Row, type Workload } from '../workload.js';

const MODEL = 'tiny';
const BACKENDS = 4;
/** Two per backend (each holds two or three such prompts); BENCH_CONVERSATIONS to try others. */
const CONVERSATIONS = Number(process.env["BENCH_CONVERSATIONS"] ?? 8);
const MIN_TURNS = 4;
const MAX_TURNS = 8;
const SYSTEM_WORDS = 200;
const USER_WORDS = 12;
const MAX_TOKENS = 24;
const MODES = ['least-loaded', 'cache-aware'] as const;
type Mode = (typeof MODES)[number];
const WORDS = ['alpha', 'river', 'stone', 'cloud', 'maple', 'quiet', 'orbit', 'lemon', 'harbor', 'violet', 'copper', 'meadow', 'signal', 'thunder', 'velvet', 'canyon'];

interface Turn {
  turn: number;
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
}

interface RoundResult {
  turns: Turn[];
  errors: number;
  reasons: string[];
  wallMs: number;
}

/** A small seeded generator, so every round's conversations differ but runs repeat. */
function prng(seed: number): () => number {
  let s = Math.imul(seed, 0x9e3779b1) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const words = (rnd: () => number, n: number): string => Array.from({ length: n }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ');

/** One streamed turn: time to the first content token, the reply, and llama-server's cache figures. */
async function turn(pool: Pool, messages: unknown[], n: number): Promise<Turn & { reply: string }> {
  const t0 = performance.now();
  const body = JSON.stringify({ model: MODEL, stream: true, max_tokens: MAX_TOKENS, ignore_eos: true, stream_options: { include_usage: true }, messages });
  const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${(await res.body.text().catch(() => '')).slice(0, 160)}`);
  let first = 0;
  let reply = '';
  let promptTokens = -1;
  let cachedTokens = 0;
  type Event = { choices?: { delta?: { content?: string | null } }[]; timings?: { cache_n?: number; prompt_n?: number } };
  for await (const { ev } of chatEvents<Event>(res.body)) {
    const content = ev.choices?.[0]?.delta?.content;
    if (typeof content === 'string' && content.length > 0) {
      if (first === 0) first = performance.now();
      reply += content;
    }
    if (ev.timings?.prompt_n !== undefined) {
      cachedTokens = ev.timings.cache_n ?? 0;
      promptTokens = cachedTokens + ev.timings.prompt_n;
    }
  }
  if (first === 0 || promptTokens < 0) throw new Error('stream without content or timings');
  return { turn: n, ttftMs: first - t0, promptTokens, cachedTokens, reply };
}

async function conversation(pool: Pool, seed: number, out: RoundResult): Promise<void> {
  const rnd = prng(seed);
  const turns = MIN_TURNS + Math.floor(rnd() * (MAX_TURNS - MIN_TURNS + 1));
  const messages: { role: string; content: string }[] = [{ role: 'system', content: `Session ${seed}. ${words(rnd, SYSTEM_WORDS)}` }];
  for (let n = 1; n <= turns; n++) {
    messages.push({ role: 'user', content: words(rnd, USER_WORDS) });
    try {
      const t = await turn(pool, messages, n);
      out.turns.push({ turn: t.turn, ttftMs: t.ttftMs, promptTokens: t.promptTokens, cachedTokens: t.cachedTokens });
      messages.push({ role: 'assistant', content: t.reply });
    } catch (err) {
      out.errors++;
      if (out.reasons.length < 3) out.reasons.push((err as Error).message);
      return;
    }
  }
}

async function runRound(url: string, roundSeed: number): Promise<RoundResult> {
  const pool = new Pool(url, { connections: CONVERSATIONS });
  const out: RoundResult = { turns: [], errors: 0, reasons: [], wallMs: 0 };
  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: CONVERSATIONS }, (_, c) => conversation(pool, roundSeed * 1000 + c + 1, out)));
  } finally {
    out.wallMs = performance.now() - t0;
    await pool.close();
  }
  return out;
}

async function startRelayFor(mode: Mode, llamas: LlamaServer[]): Promise<{ url: string; server: Child }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawnCli(`routing-${mode}-server`, 'server.js', ['--listen', `127.0.0.1:${port}`, '--worker-secret', SECRET, '--routing', mode, '--max-queue-len', '0', '--queue-timeout', '0', '--log-level', 'warn']);
  await waitHttp(server, `${url}/health`);
  llamas.forEach((l, i) =>
    spawnCli(`routing-${mode}-worker${i + 1}`, 'worker.js', ['--proxy-url', url, '--worker-secret', SECRET, '--backend-url', l.url, '--models', MODEL, '--worker-name', `w${i + 1}`, '--max-concurrency', '1', '--log-level', 'warn']),
  );
  await waitHttp(server, `${url}/health`, (b) => (b as { workers_connected?: number }).workers_connected === llamas.length);
  return { url, server };
}

/** modelrelay_routing_decisions_total by reason, from the server's /metrics. */
async function decisions(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^modelrelay_routing_decisions_total\{reason="([a-z_]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

interface ModeSummary {
  cachedShare: number;
  ttftLater: ReturnType<typeof summarize>;
  ttftFirst: ReturnType<typeof summarize>;
  turnsPerSec: number[];
  errors: number;
  reasons: string[];
}

function summarise(rs: RoundResult[]): ModeSummary {
  const later = rs.flatMap((r) => r.turns.filter((t) => t.turn > 1));
  const prompt = later.reduce((a, t) => a + t.promptTokens, 0);
  const cached = later.reduce((a, t) => a + t.cachedTokens, 0);
  return {
    cachedShare: prompt > 0 ? cached / prompt : NaN,
    ttftLater: summarize(later.map((t) => t.ttftMs)),
    ttftFirst: summarize(rs.flatMap((r) => r.turns.filter((t) => t.turn === 1).map((t) => t.ttftMs))),
    turnsPerSec: rs.map((r) => (r.turns.length * 1000) / r.wallMs),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    reasons: [...new Set(rs.flatMap((r) => r.reasons))].slice(0, 3),
  };
}

const pct = (x: number): number => round(100 * x, 1);

export const cacheRouting: Workload = {
  name: 'cache-routing',
  title: `Cache-aware vs least-loaded routing: ${BACKENDS} llama-servers (tiny model, 1 slot, --cache-ram 2), ${CONVERSATIONS} conversations of ${MIN_TURNS}-${MAX_TURNS} turns`,
  async run(ctx) {
    const ready = await ensureLlama();
    if ('skip' in ready) {
      ctx.log(`cache-routing: skipped: ${ready.skip}`);
      return { rows: [], notes: [`skipped: ${ready.skip}`], data: { skipped: ready.skip } };
    }
    const llamas = await Promise.all(Array.from({ length: BACKENDS }, () => startLlama({ alias: MODEL, slots: 1, ctx: 4096, cacheRam: 2 })));
    try {
      const relays = { 'least-loaded': await startRelayFor('least-loaded', llamas), 'cache-aware': await startRelayFor('cache-aware', llamas) };
      const pairs = ctx.quick ? 1 : 3;
      let seed = 0;
      ctx.log(`${pairs} pair(s) of rounds, ${CONVERSATIONS} conversations each`);
      const results = await interleave(MODES, pairs, async (mode) => {
        const r = await runRound(relays[mode].url, ++seed);
        ctx.log(`${mode}: ${r.turns.length} turns in ${Math.round(r.wallMs)} ms, ${r.errors} errors`);
        return r;
      });
      const s = { 'least-loaded': summarise(results['least-loaded']), 'cache-aware': summarise(results['cache-aware']) };
      const ll = s['least-loaded'];
      const ca = s['cache-aware'];
      const value = (metric: string, unit: Row['unit'], a: number, b: number): Row => ({ metric, unit, direct: a, relay: b, result: b - a, resultKind: 'added' });
      const rows: Row[] = [
        value('prompt tokens from cache, turns after the first (%)', '', pct(ll.cachedShare), pct(ca.cachedShare)),
        value('time to first token p50, turns after the first', 'ms', ll.ttftLater.p50, ca.ttftLater.p50),
        value('time to first token p99, turns after the first', 'ms', ll.ttftLater.p99, ca.ttftLater.p99),
        value('time to first token p50, first turns', 'ms', ll.ttftFirst.p50, ca.ttftFirst.p50),
        ratioRow('turns per second, all conversations', 'req/s', median(ll.turnsPerSec), median(ca.turnsPerSec)),
      ];
      const d = await decisions(relays['cache-aware'].url);
      const notes = [
        'direct column: --routing least-loaded; relay column: --routing cache-aware (same backends, rounds interleaved, fresh conversations each round)',
        `cache-aware routing decisions: ${Object.entries(d).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      ];
      for (const mode of MODES) if (s[mode].errors > 0) notes.push(`${mode}: ${s[mode].errors} conversations failed (${s[mode].reasons.join('; ')})`);
      return { rows, notes, data: { backends: BACKENDS, conversations: CONVERSATIONS, maxTokens: MAX_TOKENS, summary: s, decisions: d } };
    } finally {
      await Promise.all(llamas.map((l) => l.close()));
    }
  },
};
