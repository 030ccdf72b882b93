// Liveness from the worker's side: it reconnects when the server goes silent, a long stream is never
// taken for a dead link, a refused secret is retried slowly, and models_refresh is answered.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, test } from 'node:test';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import { killAll, startMock, startServer, startWorker } from '../helpers/cluster.js';

const fakes: WebSocketServer[] = [];
after(async () => {
  for (const wss of fakes) {
    for (const c of wss.clients) c.terminate();
    wss.close();
  }
  await killAll();
});

async function fakeServer(): Promise<{ wss: WebSocketServer; url: string; connections: WebSocket[]; nextConnection(): Promise<WebSocket> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  fakes.push(wss);
  await once(wss, 'listening');
  const connections: WebSocket[] = [];
  const waiters: ((ws: WebSocket) => void)[] = [];
  wss.on('connection', (ws) => {
    connections.push(ws);
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; models?: string[] };
      if (m.type === 'register') ws.send(JSON.stringify({ type: 'register_ack', worker_id: `w${connections.length}`, models: m.models ?? [], protocol_version: '2026-04-bridge-v1' }));
    });
    for (const w of waiters.splice(0)) w(ws);
  });
  return {
    wss,
    url: `http://127.0.0.1:${(wss.address() as { port: number }).port}`,
    connections,
    nextConnection: () => new Promise((resolve) => waiters.push(resolve)),
  };
}

test('a worker that hears nothing from the server for its heartbeat timeout reconnects', { timeout: 20_000 }, async () => {
  const mock = await startMock(['--name', 'silent']);
  const fake = await fakeServer();
  const first = fake.nextConnection();
  const worker = await startWorker({ server: fake.url, backend: mock.url, name: 'silent-w', args: ['--heartbeat-timeout', '0.5'], waitRegistered: false });
  await first;
  await worker.waitMsg('registered');
  // The fake server never pings: after 0.5 s of silence the worker must drop the link and come back.
  const second = await fake.nextConnection();
  // The log line can reach us after the new connection does: wait for it.
  await worker.waitMsg('server silent past the heartbeat timeout; reconnecting');
  // A session that ends another way (the server closes it) must not disarm the next one's watchdog.
  const third = fake.nextConnection();
  await worker.waitFor(() => worker.count('registered') >= 2, 'second registration');
  second.close(1000, 'bye');
  await third;
  await fake.nextConnection();
  await worker.waitFor(() => worker.count('server silent past the heartbeat timeout; reconnecting') === 2, 'the watchdog running again');
  fake.wss.close();
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
  // The server's line can reach us after the worker's: wait for it, then count.
  await server.waitMsg('worker authentication failed');
  assert.equal(server.count('worker authentication failed'), 1);
});

test('models_refresh is answered with models_update', { timeout: 20_000 }, async () => {
  const mock = await startMock(['--name', 'refresh']);
  const fake = await fakeServer();
  const conn = fake.nextConnection();
  const worker = await startWorker({ server: fake.url, backend: mock.url, name: 'refresh-w', models: 'auto', waitRegistered: false });
  const ws = await conn;
  await worker.waitMsg('registered');
  const update = new Promise<{ type: string; models: string[] }>((resolve) =>
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; models: string[] };
      if (m.type === 'models_update') resolve(m);
    }),
  );
  ws.send(JSON.stringify({ type: 'models_refresh', reason: 'test' }));
  assert.deepEqual((await update).models, ['mock-model']);
  fake.wss.close();
});
