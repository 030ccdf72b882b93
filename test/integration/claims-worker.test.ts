// The worker's flags that had no test: --provider, --max-frame-bytes (a too-large answer is a 502,
// the link survives), periodic --models-refresh, and the reconnect backoff (0.5 s doubling to 30 s,
// with jitter, back to the start after a successful registration).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_WORKER_CONFIG, WorkerAgent } from '../../src/worker/index.js';
import { freePort, health, killAll, startMock, startServer, startWorker } from '../helpers/cluster.js';
import { Arrivals, within } from '../helpers/bounded.js';
import { chat, post } from './faults-util.js';
import { startFakeRelay, startScriptedBackend, type FakeRelay, type ScriptedBackend } from './fakes.js';

const T = { timeout: 30_000 };
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanup.splice(0).map((c) => c()));
  await killAll();
});

async function relay(opts?: Parameters<typeof startFakeRelay>[0]): Promise<FakeRelay> {
  const r = await startFakeRelay(opts);
  cleanup.push(() => r.close());
  return r;
}

async function scripted(models: string[]): Promise<ScriptedBackend> {
  const b = await startScriptedBackend(models);
  cleanup.push(() => b.close());
  return b;
}

test('--provider is sent to the server when connecting (default "local")', T, async () => {
  const mock = await startMock(['--name', 'prov']);
  const fake = await relay({ autoAck: [] });
  await startWorker({ server: fake.url, backend: mock.url, name: 'farm-w', args: ['--provider', 'gpu-farm'], waitRegistered: false });
  const farm = await fake.link(1);
  assert.equal(farm.url.pathname, '/v1/worker/connect');
  assert.equal(farm.url.searchParams.get('provider'), 'gpu-farm');
  await startWorker({ server: fake.url, backend: mock.url, name: 'plain-w', waitRegistered: false });
  const plain = await fake.link(2);
  assert.equal(plain.url.searchParams.get('provider'), 'local');
});

test('--max-frame-bytes: a backend answer too big for a frame is a 502, and the worker stays connected and serving', T, async () => {
  const [mock, server] = await Promise.all([startMock(['--name', 'big']), startServer()]);
  // 128 KiB frames leave 64 KiB for a body; the default worker takes the same answers whole.
  const small = await startWorker({ server, backend: mock.url, name: 'small-frames', models: 'small-model', args: ['--max-frame-bytes', '131072'] });
  await startWorker({ server, backend: mock.url, name: 'default-frames', models: 'default-model' });
  const big = { 'x-mock-tokens': '100', 'x-mock-chunk-bytes': '1024' }; // about 100 KB of content
  const res = await within(post(server, '/v1/chat/completions', JSON.stringify({ model: 'small-model', messages: [] }), big), 'the oversized answer');
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 502);
  assert.equal(body.error.code, 'backend_error');
  assert.match(body.error.message, /frame limit/);
  // The same for a stream whose first event is too big for a frame: nothing went out yet, so a 502.
  const streamed = await within(post(server, '/v1/chat/completions', JSON.stringify({ model: 'small-model', stream: true, messages: [] }), { 'x-mock-tokens': '1', 'x-mock-chunk-bytes': '300000' }), 'the oversized stream');
  const streamedBody = (await streamed.json()) as { error: { code: string; message: string } };
  assert.equal(streamed.status, 502);
  assert.equal(streamedBody.error.code, 'backend_error');
  assert.match(streamedBody.error.message, /frame limit/);
  const whole = await within(post(server, '/v1/chat/completions', JSON.stringify({ model: 'default-model', messages: [] }), big), 'the same answer through the default worker');
  assert.equal(whole.status, 200);
  await whole.arrayBuffer();
  const after = await within(post(server, '/v1/chat/completions', JSON.stringify({ model: 'small-model', messages: [] }), { 'x-mock-tokens': '2' }), 'a small answer afterwards');
  assert.equal(after.status, 200);
  await after.arrayBuffer();
  assert.equal(small.count('registered'), 1, 'the worker had to reconnect');
  assert.equal(server.count('worker disconnected'), 0);
  assert.equal((await health(server)).workers_connected, 2);
});

test('--models-refresh re-reads the backend model list periodically and the server routes the new model', T, async () => {
  const [backend, server] = await Promise.all([scripted(['first-model']), startServer()]);
  await startWorker({ server, backend: backend.url, name: 'refresh-w', models: 'auto', args: ['--models-refresh', '0.2'] });
  assert.equal((await chat(server)).status, 404, 'mock-model is not served');
  backend.models = ['first-model', 'second-model'];
  const updated = await server.waitMsg('worker models updated', { worker: 'refresh-w' });
  assert.deepEqual(updated['models'], ['first-model', 'second-model']);
  const listed = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
  assert.deepEqual(listed.data.map((m) => m.id).sort(), ['first-model', 'second-model']);
  const res = await within(post(server, '/v1/chat/completions', JSON.stringify({ model: 'second-model', messages: [] })), 'a request for the new model');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { echo: '/v1/chat/completions' });
  assert.ok(backend.calls.count((c) => c.method === 'GET' && c.path === '/v1/models') >= 2, 'the model list was read once only');
});

test('reconnect backoff: the CLI starts at 0.5 s and doubles, with jitter (each delay between half and all of its step)', T, async () => {
  assert.equal(DEFAULT_WORKER_CONFIG.reconnectMinMs, 500);
  assert.equal(DEFAULT_WORKER_CONFIG.reconnectMaxMs, 30_000);
  const port = await freePort(); // nothing listens there
  const worker = await startWorker({ server: `http://127.0.0.1:${port}`, backend: 'http://127.0.0.1:1', name: 'backoff-w', waitRegistered: false });
  await worker.waitFor(() => worker.count('reconnecting') >= 2, 'two reconnect attempts');
  const delays = worker.lines.filter((l) => l.msg === 'reconnecting').map((l) => Number(l['in_ms']));
  assert.ok(delays[0]! >= 250 && delays[0]! <= 500, `first delay ${delays[0]} ms`);
  assert.ok(delays[1]! >= 500 && delays[1]! <= 1000, `second delay ${delays[1]} ms`);
});

test('reconnect backoff: doubles up to its cap with jitter, and starts over after a registration', T, async () => {
  const lines = new Arrivals<Record<string, unknown>>('worker log');
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const port = await freePort(); // nothing listens there
  const agent = new WorkerAgent(
    { ...DEFAULT_WORKER_CONFIG, proxyUrl: `http://127.0.0.1:${port}`, workerSecret: 'x', backends: [{ url: 'http://127.0.0.1:1', models: ['m'], modelMap: [], maxConcurrency: 1, egress: { proxy: undefined, reason: 'test' } }], reconnectMinMs: 20, reconnectMaxMs: 160 },
    log,
  );
  const reconnects = (): number[] => lines.all.filter((l) => l['msg'] === 'reconnecting').map((l) => Number(l['in_ms']));
  try {
    await agent.start();
    await lines.next(() => reconnects().length >= 8, 'eight reconnect attempts');
    const delays = reconnects().slice(0, 8);
    // Steps 20, 40, 80, then the 160 ms cap; each delay is drawn between half the step and the step.
    const steps = [20, 40, 80, 160, 160, 160, 160, 160];
    delays.forEach((d, i) => assert.ok(d >= steps[i]! / 2 && d <= steps[i]!, `delay #${i + 1} was ${d} ms for a ${steps[i]} ms step (all: ${delays.join(', ')})`));
    assert.ok(new Set(delays.slice(3)).size > 1, `no jitter at the cap: ${delays.join(', ')}`);
    // A server appears on that port: the worker registers, and once that link drops it starts over.
    const fake = await relay({ autoAck: [], port });
    const link = await fake.link(1, 5_000);
    await lines.next((l) => l['msg'] === 'registered', 'the registration');
    const before = reconnects().length;
    link.ws.close(1000, 'bye');
    await lines.next(() => reconnects().length > before, 'the reconnect after the registered link dropped');
    const fresh = reconnects()[before]!;
    assert.ok(fresh >= 10 && fresh <= 20, `after a registration the backoff restarted at ${fresh} ms, not the first step`);
  } finally {
    agent.stop();
  }
});
