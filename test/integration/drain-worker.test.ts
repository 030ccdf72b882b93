// The mechanism behind an operator's "drain this worker": no new work for it, its in-flight request
// finishes, then it closes its session (and, being a daemon, comes back later).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { startServer } from '../../src/server/index.js';
import { SECRET, killAll, startMock, startWorker, until } from '../helpers/cluster.js';

after(killAll);

test('drainWorker: routes nothing new to the worker, lets its request finish, then it closes', { timeout: 30_000 }, async () => {
  const server = await startServer({ host: '127.0.0.1', port: 0, workerSecret: SECRET, drainTimeoutMs: 10_000 }, createLogger('silent'));
  try {
    const [mockA, mockB] = await Promise.all([startMock(['--name', 'A']), startMock(['--name', 'B'])]);
    const workerA = await startWorker({ server: server.url, backend: mockA.url, name: 'wA' });
    const chat = (headers: Record<string, string> = {}): Promise<string> =>
      fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: 'mock-model', stream: true, messages: [] }),
      }).then((r) => r.text());
    const slow = chat({ 'x-mock-tokens': '10', 'x-mock-delay-ms': '100' });
    await until(async () => (await mockA.stats()).active === 1, 'the slow request on A');
    await startWorker({ server: server.url, backend: mockB.url, name: 'wB' });
    const a = server.relay.scheduler.workerList().find((w) => w.name === 'wA')!;
    assert.equal(server.relay.drainWorker(a.id), true);
    // New work goes to B only (undrained, least-loaded selection would hand A some of these).
    const fresh = await Promise.all([1, 2, 3].map(() => chat({ 'x-mock-first-delay-ms': '200' })));
    for (const f of fresh) assert.match(f, /\[B\]/);
    const done = await slow;
    assert.match(done, /\[A\]/);
    assert.ok(done.endsWith('data: [DONE]\n\n'), 'the drained worker finished its stream');
    await workerA.waitMsg('server asked us to drain');
    await until(() => !server.relay.scheduler.hasWorker(a.id), 'the drained session to close');
    assert.equal(server.relay.drainWorker('no-such-worker'), false);
  } finally {
    await server.destroy();
  }
});
