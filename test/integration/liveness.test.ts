// Liveness from the worker's side: it reconnects when the server goes silent, a long stream is never
// taken for a dead link, a refused secret is retried slowly, and models_refresh is answered.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { killAll, startMock, startServer, startWorker } from '../helpers/cluster.js';
import { startFakeRelay, type FakeRelay } from './fakes.js';

after(killAll);

/** A fake relay that acks every register as a base-protocol server would (no extensions, no pings). */
const fakeServer = (): Promise<FakeRelay> => startFakeRelay({ autoAck: [] });

test('a worker that hears nothing from the server for its heartbeat timeout reconnects', { timeout: 20_000 }, async () => {
  const mock = await startMock(['--name', 'silent']);
  const fake = await fakeServer();
  try {
    const worker = await startWorker({ server: fake.url, backend: mock.url, name: 'silent-w', args: ['--heartbeat-timeout', '0.5'], waitRegistered: false });
    await fake.link(1);
    await worker.waitMsg('registered');
    // The fake server never pings: after 0.5 s of silence the worker must drop the link and come back.
    const second = await fake.link(2);
    await worker.waitMsg('server silent past the heartbeat timeout; reconnecting');
    // A session that ends another way (the server closes it) must not disarm the next one's watchdog.
    await worker.waitFor(() => worker.count('registered') >= 2, 'second registration');
    second.ws.close(1000, 'bye');
    await fake.link(3);
    await fake.link(4);
    await worker.waitFor(() => worker.count('server silent past the heartbeat timeout; reconnecting') >= 2, 'the watchdog to run again on the third link');
  } finally {
    await fake.close();
  }
});

test('a stream longer than both heartbeat timeouts completes without either side dropping the link', { timeout: 20_000 }, async () => {
  const mock = await startMock(['--name', 'long']);
  const server = await startServer(['--heartbeat-interval', '0.2', '--heartbeat-timeout', '1']);
  const worker = await startWorker({ server, backend: mock.url, name: 'long-w', args: ['--heartbeat-timeout', '1'] });
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-tokens': '25', 'x-mock-delay-ms': '120' },
    body: JSON.stringify({ model: 'mock-model', stream: true, messages: [] }),
  });
  const text = await res.text();
  assert.equal(res.status, 200);
  assert.ok(text.endsWith('data: [DONE]\n\n'), 'the 3 s stream ended normally');
  assert.equal(server.count('worker disconnected'), 0);
  assert.equal(worker.count('reconnecting'), 0);
});

// Found looking into workers the chaos soak saw dropped: a process held up past its heartbeat
// timeout (a GC pause, a starved or paused VM) judged its peer's silence before reading the frames
// that had arrived meanwhile, and dropped a link that had been alive all along.
test('a server held up past its heartbeat timeout reads what its workers sent before judging them silent', { timeout: 30_000 }, async () => {
  const mock = await startMock(['--name', 'held']);
  const server = await startServer(['--heartbeat-interval', '0.2', '--heartbeat-timeout', '1']);
  const worker = await startWorker({ server, backend: mock.url, name: 'held-w', args: ['--heartbeat-timeout', '30'] });
  // The worker keeps talking (a stream) while the server is stopped.
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-tokens': '30', 'x-mock-delay-ms': '100' },
    body: JSON.stringify({ model: 'mock-model', stream: true, messages: [] }),
  });
  assert.equal(res.status, 200);
  server.signal('SIGSTOP');
  await new Promise((r) => setTimeout(r, 2000));
  server.signal('SIGCONT');
  const text = await res.text();
  assert.ok(text.endsWith('data: [DONE]\n\n'), `the stream ended normally: ${text.slice(-200)}`);
  // Another request after the wake-up: any overdue deadline has been judged by now.
  const next = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-model', messages: [] }) });
  assert.equal(next.status, 200);
  assert.equal(server.count('worker disconnected'), 0, 'the worker was not dropped');
  assert.equal(worker.count('registered'), 1);
});

test('a worker held up past its heartbeat timeout reads the pings that arrived before judging the server silent', { timeout: 30_000 }, async () => {
  const mock = await startMock(['--name', 'paused']);
  const server = await startServer(['--heartbeat-interval', '0.2', '--heartbeat-timeout', '30']);
  const worker = await startWorker({ server, backend: mock.url, name: 'paused-w', args: ['--heartbeat-timeout', '1'] });
  worker.signal('SIGSTOP');
  await new Promise((r) => setTimeout(r, 2000));
  worker.signal('SIGCONT');
  // A request through the worker after the wake-up: its overdue watchdog has run by now.
  const next = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mock-model', messages: [] }) });
  assert.equal(next.status, 200);
  assert.equal(worker.count('server silent past the heartbeat timeout; reconnecting'), 0, 'the worker kept its link');
  assert.equal(worker.count('registered'), 1);
});

test('a refused secret is logged as such and retried slowly, not in a hot loop', { timeout: 20_000 }, async () => {
  const mock = await startMock(['--name', 'refused']);
  const server = await startServer();
  const worker = await startWorker({ server, backend: mock.url, name: 'refused-w', secret: 'wrong', waitRegistered: false });
  await worker.waitFor((l) => String(l.msg).includes('refused the worker secret (401)'), '401 log line');
  // A second attempt within the next second would be a hot loop; the retry delay is a minute.
  const reconnect = await worker.waitMsg('reconnecting');
  assert.ok(Number(reconnect['in_ms']) >= 10_000, `retry scheduled in ${String(reconnect['in_ms'])} ms`);
  await server.waitMsg('worker authentication failed');
  assert.equal(server.count('worker authentication failed'), 1);
});

test('models_refresh is answered with models_update', { timeout: 20_000 }, async () => {
  const mock = await startMock(['--name', 'refresh']);
  const fake = await fakeServer();
  try {
    const worker = await startWorker({ server: fake.url, backend: mock.url, name: 'refresh-w', models: 'auto', waitRegistered: false });
    const link = await fake.link(1);
    await worker.waitMsg('registered');
    link.send({ type: 'models_refresh', reason: 'test' });
    const update = await link.frames.next((f) => f.type === 'models_update', 'models_update in answer to models_refresh');
    assert.deepEqual(update.models, ['mock-model']);
  } finally {
    await fake.close();
  }
});
