// Cache-aware routing against real llama-servers: three backends (tiny model, one slot each), each
// behind its own worker (--max-concurrency 1), one relay server with the default --routing
// cache-aware. Where each request ran and why come from the server's 'request finished' lines
// (`worker`, `route`); that the stickiness pays is checked in llama-server's own cached_tokens.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { ensureLlama, startLlama, type LlamaServer } from '../helpers/llama.js';
import { killAll, startServer, startWorker, until, type LogLine, type Proc, type ServerProc } from '../helpers/cluster.js';

const ready = await ensureLlama();
const skip = 'skip' in ready ? ready.skip : false;
const T = { timeout: 60_000, skip };
const NAMES = ['w1', 'w2', 'w3'];

let llamas: LlamaServer[] = [];
let server: ServerProc;
const workers = new Map<string, Proc>();
let openai: OpenAI;

before(async () => {
  if (skip) return;
  const started = await Promise.all([...NAMES.map(() => startLlama({ alias: 'tiny', slots: 1, ctx: 4096 })), startServer()]);
  llamas = started.slice(0, NAMES.length) as LlamaServer[];
  server = started[NAMES.length] as ServerProc;
  const ws = await Promise.all(NAMES.map((name, i) => startWorker({ server, backend: llamas[i]!.url, name, models: 'tiny', maxConcurrency: 1 })));
  NAMES.forEach((n, i) => workers.set(n, ws[i]!));
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
});

after(async () => {
  if (skip) return;
  await killAll();
  await Promise.all(llamas.map((l) => l.close()));
});

const EXACT = { ignore_eos: true } as Record<string, unknown>;
type Msg = { role: 'system' | 'user' | 'assistant'; content: string };

/** A system prompt of its own (a few hundred tokens of the tiny model's tokenizer). */
function system(tag: string): Msg {
  return { role: 'system', content: `${tag}: ${Array.from({ length: 120 }, (_, i) => `${tag}${i % 7} words`).join(' ')}` };
}

let seen = 0;

/** The 'request finished' line of the next request, once it is logged. */
async function finishedLine(run: () => Promise<unknown>): Promise<LogLine> {
  await until(() => server.count('request finished') >= seen, `'request finished' of ${seen} earlier request(s)`, 15_000);
  const from = server.lines.length;
  seen++;
  await run();
  const pick = (): LogLine | undefined => server.lines.slice(from).find((l) => l.msg === 'request finished');
  return (await until(pick, "this request's 'request finished' line", 15_000))!;
}

/** One turn: the answer is appended to `messages`; returns the log line and the cached tokens. */
async function turn(messages: Msg[], text: string, opts: { key?: string; session?: string } = {}): Promise<{ line: LogLine; cached: number }> {
  messages.push({ role: 'user', content: text });
  let cached = 0;
  const line = await finishedLine(async () => {
    const a = await openai.chat.completions.create(
      { model: 'tiny', messages, max_tokens: 8, ...EXACT, ...(opts.key ? { prompt_cache_key: opts.key } : {}) },
      opts.session ? { headers: { 'X-Session-Id': opts.session } } : undefined,
    );
    messages.push({ role: 'assistant', content: a.choices[0]!.message.content ?? '' });
    cached = a.usage?.prompt_tokens_details?.cached_tokens ?? 0;
  });
  assert.equal(line['status'], 200);
  return { line, cached };
}

test("a conversation's turns stick to one worker, and its later turns come from that backend's cache", T, async () => {
  const conv: Msg[] = [system('alpha')];
  const first = await turn(conv, 'Hello.');
  const home = first.line['worker'];
  for (let i = 2; i <= 4; i++) {
    const t = await turn(conv, `Turn ${i}.`);
    assert.equal(t.line['worker'], home, `turn ${i} served by ${String(t.line['worker'])}, turn 1 by ${String(home)}`);
    assert.equal(t.line['route'], 'prefix');
    assert.ok((t.line['prefix_blocks'] as number) >= 2, `turn ${i}: ${String(t.line['prefix_blocks'])} blocks matched`);
    assert.ok(t.cached > 0, `turn ${i}: ${t.cached} cached prompt tokens`);
  }
  // Another conversation, meanwhile, goes to the least loaded (all idle: the least recently used).
  const other = await turn([system('beta')], 'Hi.');
  assert.equal(other.line['route'], 'least_loaded');
  assert.notEqual(other.line['worker'], home);
});

test('prompt_cache_key and X-Session-Id stick to the worker that served the key last, whatever the prompt', T, async () => {
  const a = await turn([system('gamma')], 'One.', { key: 'conv-key-1' });
  for (const tag of ['delta', 'epsilon']) {
    const t = await turn([system(tag)], 'Two.', { key: 'conv-key-1' });
    assert.equal(t.line['worker'], a.line['worker']);
    assert.equal(t.line['route'], 'affinity');
  }
  const s = await turn([system('zeta')], 'One.', { session: 'session-9' });
  for (const tag of ['eta', 'theta']) {
    const t = await turn([system(tag)], 'Two.', { session: 'session-9' });
    assert.equal(t.line['worker'], s.line['worker']);
    assert.equal(t.line['route'], 'affinity');
  }
});

test('a busy preferred worker loses the request to an idle one, and the conversation follows it', T, async () => {
  const conv: Msg[] = [system('iota')];
  const home = (await turn(conv, 'Start.')).line['worker'];
  // Occupy the home worker with a long generation of the same conversation (it goes home: idle).
  const busy = new AbortController();
  const long = await openai.chat.completions.create({ model: 'tiny', messages: [...conv, { role: 'user', content: 'Go on.' }], max_tokens: 4000, stream: true, ...EXACT }, { signal: busy.signal });
  const it = long[Symbol.asyncIterator]();
  await it.next(); // running on its worker now
  try {
    const moved = await turn(conv, 'Next.');
    assert.notEqual(moved.line['worker'], home, 'the home worker was busy');
    assert.equal(moved.line['route'], 'load_bound');
    busy.abort();
    await it.return?.();
    // The long request ends (cancelled) before the next turn's line is looked for.
    await server.waitMsg('request finished', { worker: home, error: 'client_disconnect' });
    seen++;
    // The index learned the new home: the next turn goes there, not back.
    const next = await turn(conv, 'And then.');
    assert.equal(next.line['worker'], moved.line['worker']);
    assert.equal(next.line['route'], 'prefix');
  } finally {
    busy.abort();
  }
});

test('a worker that leaves is forgotten: its conversations move to the others', T, async () => {
  const conv: Msg[] = [system('kappa')];
  const home = (await turn(conv, 'Start.')).line['worker'] as string;
  assert.equal((await turn(conv, 'Again.')).line['worker'], home);
  const gone = server.waitMsg('worker disconnected', { worker: home }, 15_000);
  await workers.get(home)!.kill();
  await gone;
  await until(async () => ((await (await fetch(`${server.url}/health`)).json()) as { workers_connected: number }).workers_connected === NAMES.length - 1, 'the server to drop the worker');
  const moved = await turn(conv, 'Still there?');
  assert.notEqual(moved.line['worker'], home);
  assert.equal(moved.line['route'], 'least_loaded', 'nothing of the departed worker is remembered');
  assert.equal((await turn(conv, 'Good.')).line['worker'], moved.line['worker'], 'and it sticks to its new home');
  // The decisions are on /metrics.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  for (const reason of ['prefix', 'affinity', 'load_bound', 'least_loaded']) {
    const m = new RegExp(`^modelrelay_routing_decisions_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(metrics);
    assert.ok(m && Number(m[1]) > 0, `${reason} decisions counted`);
  }
});
