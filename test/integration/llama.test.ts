// End-to-end tests against a real LLM backend: llama.cpp's llama-server with a generated tiny model,
// behind real modelrelay processes (dist/), driven by the openai and @anthropic-ai/sdk clients.
//
// Cluster (three llama-servers at most, one thread each):
//   llama "tiny"   (2 slots) ← worker w1 (--models auto) and worker w2 (--models tiny)
//   llama "tiny-a"           ← worker wa (--models tiny-a)
//   llama "tiny-b"           ← worker wb (--models tiny-b)
// Usage and routing are checked against the server's 'request finished' log line of each request.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { ensureLlama, startLlama, type LlamaServer } from '../helpers/llama.js';
import { killAll, startServer, startWorker, until, type LogLine, type Proc, type ServerProc } from '../helpers/cluster.js';

// Without network (or off Debian/x86_64) llama-server can't be fetched: every test below skips with the reason.
const ready = await ensureLlama();
const skip = 'skip' in ready ? ready.skip : false;
const T = { timeout: 30_000, skip };

let llama: LlamaServer;
let llamaA: LlamaServer;
let llamaB: LlamaServer;
let server: ServerProc;
let w1: Proc;
let openai: OpenAI;
let anthropic: Anthropic;

/** llama.cpp sampling extras, passed through the clients as additional body fields. */
const EXACT = { ignore_eos: true } as Record<string, unknown>;
const userMsg = [{ role: 'user' as const, content: 'Tell me a story about a relay.' }];

before(async () => {
  if (skip) return;
  const started = await Promise.all([
    startLlama({ alias: 'tiny', slots: 2 }),
    startLlama({ alias: 'tiny-a', slots: 1, ctx: 2048 }),
    startLlama({ alias: 'tiny-b', slots: 1, ctx: 2048 }),
    startServer(),
  ]);
  [llama, llamaA, llamaB] = started;
  server = started[3];
  [w1] = await Promise.all([
    startWorker({ server, backend: llama.url, name: 'w1', models: 'auto' }),
    startWorker({ server, backend: llama.url, name: 'w2', models: 'tiny' }),
    startWorker({ server, backend: llamaA.url, name: 'wa', models: 'tiny-a' }),
    startWorker({ server, backend: llamaB.url, name: 'wb', models: 'tiny-b' }),
  ]);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-test', maxRetries: 0 });
});

after(async () => {
  if (skip) return;
  await killAll();
  await Promise.all([llama, llamaA, llamaB].map((l) => l?.close()));
});

// ---------- helpers ----------

let issued = 0;

/**
 * Position in the server's log after which the next `n` requests' 'request finished' lines will come.
 * First waits for the lines of every earlier request: a client can have its answer before the server's
 * log line for it has reached us, and that line must not be taken for the next request's.
 */
async function mark(n = 1): Promise<number> {
  await until(() => server.count('request finished') >= issued, `'request finished' lines of ${issued} earlier request(s)`, 15_000);
  issued += n;
  return server.lines.length;
}

/** The `n` 'request finished' lines logged after `from` (matching `pred`), once they are all there. */
async function finished(from: number, n = 1, pred: (l: LogLine) => boolean = () => true): Promise<LogLine[]> {
  const pick = () => server.lines.slice(from).filter((l) => l.msg === 'request finished' && pred(l));
  await until(() => pick().length >= n, `${n} 'request finished' line(s)`, 15_000);
  return pick();
}

/** The token counts a log line carries, in the OpenAI usage shape. */
const logged = (l: LogLine) => ({ prompt_tokens: l['prompt_tokens'], completion_tokens: l['completion_tokens'], total_tokens: l['total_tokens'] });

/** Waits until the backend runs nothing, then reads a counter (llama.cpp updates counters when a generation ends). */
async function idleMetric(l: LlamaServer, name: string, timeoutMs = 20_000): Promise<number> {
  await until(async () => (await l.metric('llamacpp:requests_processing')) === 0, `${l.url} idle`, timeoutMs);
  return l.metric(name);
}

// ---------- 1. streaming usage ----------

test('1. streamed chat with include_usage: text in several chunks, usage arrives, and the logged token counts equal it', T, async () => {
  const from = await mark();
  const stream = await openai.chat.completions.create({
    model: 'tiny',
    messages: userMsg,
    max_tokens: 24,
    stream: true,
    stream_options: { include_usage: true },
    ...EXACT,
  });
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  const pieces = chunks.map((c) => c.choices[0]?.delta?.content).filter((p): p is string => !!p);
  assert.ok(pieces.length >= 10, `text arrives token by token, got ${pieces.length} content chunks`);
  assert.ok(pieces.join('').length > 0);
  assert.equal(chunks[0]?.model, 'tiny');
  const usageChunks = chunks.filter((c) => c.usage);
  assert.equal(usageChunks.length, 1, 'exactly one chunk carries usage');
  const usage = usageChunks[0]!.usage!;
  assert.deepEqual(usageChunks[0]!.choices, []);
  assert.equal(usage.completion_tokens, 24, 'ignore_eos makes the length exact');
  assert.ok(usage.prompt_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

  const [line] = await finished(from);
  assert.equal(line!['status'], 200);
  assert.equal(line!['stream'], true);
  assert.equal(line!['model'], 'tiny');
  assert.ok(line!['worker'] === 'w1' || line!['worker'] === 'w2', `served by a tiny worker, got ${String(line!['worker'])}`);
  assert.deepEqual(logged(line!), { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens });
});

// ---------- 2. the other dialects ----------

test('2a. non-streamed chat: content, exact usage, and the log line equals it', T, async () => {
  const from = await mark();
  const r = await openai.chat.completions.create({ model: 'tiny', messages: userMsg, max_tokens: 12, ...EXACT });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, 'tiny');
  assert.ok((r.choices[0]?.message.content ?? '').length > 0, 'content is non-empty');
  assert.equal(r.choices[0]?.finish_reason, 'length');
  assert.equal(r.usage?.completion_tokens, 12);
  const [line] = await finished(from);
  assert.equal(line!['stream'], false);
  assert.deepEqual(logged(line!), { prompt_tokens: r.usage!.prompt_tokens, completion_tokens: 12, total_tokens: r.usage!.total_tokens });
});

test('2b. /v1/completions: text, exact usage, and the log line equals it', T, async () => {
  const from = await mark();
  const r = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 10, ...EXACT });
  assert.equal(r.object, 'text_completion');
  assert.ok((r.choices[0]?.text ?? '').length > 0, 'text is non-empty');
  assert.equal(r.usage?.completion_tokens, 10);
  const [line] = await finished(from);
  assert.equal(line!['endpoint'], '/v1/completions');
  assert.deepEqual(logged(line!), { prompt_tokens: r.usage!.prompt_tokens, completion_tokens: 10, total_tokens: r.usage!.total_tokens });
});

test('2c. Anthropic messages.create: text and usage', T, async () => {
  const from = await mark();
  const m = await anthropic.messages.create({ model: 'tiny', max_tokens: 12, messages: userMsg, ...EXACT });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, 'tiny');
  const text = m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
  assert.ok(text.length > 0, 'text is non-empty');
  assert.equal(m.stop_reason, 'max_tokens');
  assert.equal(m.usage.output_tokens, 12);
  assert.ok(m.usage.input_tokens > 0);
  const [line] = await finished(from);
  assert.equal(line!['endpoint'], '/v1/messages');
  assert.equal(line!['status'], 200);
  assert.equal(line!['completion_tokens'], 12);
});

test('2d. Anthropic messages.stream: text deltas, final message with usage', T, async () => {
  const from = await mark();
  const stream = anthropic.messages.stream({ model: 'tiny', max_tokens: 16, messages: userMsg, ...EXACT });
  const deltas: string[] = [];
  stream.on('text', (t) => deltas.push(t));
  const m = await stream.finalMessage();
  assert.ok(deltas.length >= 5, `text arrives in pieces, got ${deltas.length}`);
  const text = m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
  assert.ok(text.length > 0, 'text is non-empty');
  assert.equal(text, deltas.join(''));
  assert.equal(m.usage.output_tokens, 16);
  const [line] = await finished(from);
  assert.equal(line!['stream'], true);
  assert.equal(line!['completion_tokens'], 16);
});

// llama-server answers /v1/messages with Anthropic usage semantics: input_tokens counts only the prompt
// tokens it did NOT find in its KV cache, the rest is in cache_read_input_tokens. The relay's token
// counts use OpenAI names (prompt_tokens includes cached tokens), so the whole input must be counted:
// a cache hit must not log prompt_tokens 1 where /v1/chat/completions logs the whole prompt.
test('2e. Anthropic usage with cached input: the logged prompt_tokens count cached input tokens too (as for chat)', T, async () => {
  const params = { model: 'tiny', max_tokens: 4, messages: userMsg, ...EXACT };
  await mark();
  await anthropic.messages.create(params); // warms the slot's cache for this prompt
  const from = await mark();
  const m = await anthropic.messages.create(params);
  const u = m.usage;
  const input = u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
  const [line] = await finished(from);
  // the same conversation through /v1/chat/completions reports the whole prompt
  const fromChat = await mark();
  const chat = await openai.chat.completions.create({ model: 'tiny', messages: userMsg, max_tokens: 4, ...EXACT });
  const [chatLine] = await finished(fromChat);
  assert.equal(chatLine!['prompt_tokens'], chat.usage!.prompt_tokens);
  assert.deepEqual(
    logged(line!),
    { prompt_tokens: input, completion_tokens: u.output_tokens, total_tokens: input + u.output_tokens },
    `usage ${JSON.stringify(u)}; chat logged prompt_tokens ${String(chatLine!['prompt_tokens'])} for the same conversation`,
  );
});

// ---------- 3. cancellation reaches the backend ----------

test('3. a client aborting a 4,000-token generation stops the backend within a few tokens', T, async () => {
  const base = await idleMetric(llama, 'llamacpp:tokens_predicted_total');
  const from = await mark();
  const ac = new AbortController();
  const stream = await openai.chat.completions.create(
    { model: 'tiny', messages: userMsg, max_tokens: 4000, stream: true, ...EXACT },
    { signal: ac.signal },
  );
  let n = 0;
  for await (const c of stream) {
    if (c.choices[0]?.delta?.content) n++;
    if (n === 5) break; // leaving the loop aborts the SDK's request
  }
  ac.abort();
  const [line] = await finished(from);
  assert.equal(line!['error'], 'client_disconnect');
  const afterAbort = await idleMetric(llama, 'llamacpp:tokens_predicted_total');
  const generated = afterAbort - base;
  assert.ok(generated >= 5, `the backend generated at least what we read (${generated})`);
  assert.ok(generated < 2000, `the backend stopped early: ${generated} of 4000 tokens generated`);
});

// ---------- 4. model discovery ----------

test("4. --models auto: the worker registers the backend's model id and the relay lists it", T, async () => {
  const reg = await w1.waitMsg('registered');
  assert.deepEqual(reg['models'], ['tiny']);
  const srvReg = await server.waitMsg('worker registered', { worker: 'w1' });
  assert.deepEqual(srvReg['models'], ['tiny']);
  const ids: string[] = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual([...ids].sort(), ['tiny', 'tiny-a', 'tiny-b']);
});

// ---------- 5. routing and load sharing ----------

test('5a. each model is routed to its own backend', T, async () => {
  const from = await mark(4);
  const calls = ['tiny-a', 'tiny-b', 'tiny-a', 'tiny-b'].map((model) =>
    openai.chat.completions.create({ model, messages: userMsg, max_tokens: 6, ...EXACT }),
  );
  const answers = await Promise.all(calls);
  assert.deepEqual(answers.map((a) => a.model), ['tiny-a', 'tiny-b', 'tiny-a', 'tiny-b'], 'llama-server stamps its alias on the answer');
  const lines = await finished(from, 4);
  for (const l of lines) {
    assert.equal(l['status'], 200);
    assert.equal(l['worker'], l['model'] === 'tiny-a' ? 'wa' : 'wb', `request for ${String(l['model'])} served by ${String(l['worker'])}`);
  }
  assert.equal(lines.filter((l) => l['model'] === 'tiny-a').length, 2);
});

test('5b. two workers in front of the same model share the load', T, async () => {
  const from = await mark(4);
  const calls = Array.from({ length: 4 }, () =>
    openai.chat.completions.create({ model: 'tiny', messages: userMsg, max_tokens: 32, ...EXACT }),
  );
  const answers = await Promise.all(calls);
  for (const a of answers) {
    assert.equal(a.model, 'tiny');
    assert.equal(a.usage?.completion_tokens, 32);
  }
  const lines = await finished(from, 4, (l) => l['model'] === 'tiny');
  const workers = lines.map((l) => l['worker'] as string);
  assert.deepEqual([...new Set(workers)].sort(), ['w1', 'w2'], `workers used: ${workers.join(', ')}`);
});
