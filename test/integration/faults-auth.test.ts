// Secret guessing on the worker endpoint: failures are rate-limited per peer address, and
// X-Forwarded-For only names the peer with --trust-proxy.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { SECRET, health, killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { upgradeStatus } from './faults-util.js';

afterEach(() => killAll());

describe('worker authentication', () => {
  test('failed worker authentication is rate-limited per peer; X-Forwarded-For only counts with --trust-proxy', async () => {
    const [direct, proxied] = await Promise.all([startServer(), startServer(['--trust-proxy'])]);

    // trust-proxy off: the peer is the socket address, whatever X-Forwarded-For says.
    for (let i = 0; i < 10; i++) {
      const r = await upgradeStatus(direct, 'wrong-secret', { 'x-forwarded-for': `192.0.2.${i}` });
      assert.equal(r.status, 401, `attempt ${i + 1}`);
    }
    const limited = await upgradeStatus(direct, SECRET);
    assert.equal(limited.status, 429, 'even the right secret is refused once limited');
    assert.ok(Number(limited.retryAfter) > 0, 'Retry-After is set');
    assert.equal((await upgradeStatus(direct, SECRET, { 'x-forwarded-for': '203.0.113.77' })).status, 429);
    assert.equal((await upgradeStatus(direct, 'wrong-secret', { 'x-forwarded-for': '203.0.113.78' })).status, 429);
    await until(() => direct.count('worker authentication rate limited') === 3, 'rate limiting logged');
    assert.equal(direct.count('worker authentication failed'), 10);
    assert.equal((await health(direct)).workers_connected, 0);

    // trust-proxy on: each forwarded address has its own budget.
    for (let i = 0; i < 10; i++) assert.equal((await upgradeStatus(proxied, 'wrong-secret', { 'x-forwarded-for': '198.51.100.1' })).status, 401);
    assert.equal((await upgradeStatus(proxied, SECRET, { 'x-forwarded-for': '198.51.100.1' })).status, 429);
    assert.equal((await upgradeStatus(proxied, SECRET, { 'x-forwarded-for': '198.51.100.2' })).status, 101);

    // Real workers: one from the rate-limited address is refused with 429 despite the right secret;
    // one with the wrong secret says so plainly.
    const mock = await startMock();
    const limitedWorker = await startWorker({ server: direct, backend: mock.url, name: 'limited', waitRegistered: false });
    await limitedWorker.waitMsg('the server refused the connection', { status: 429 });
    assert.equal(limitedWorker.count('registered'), 0);
    const wrong = await startWorker({ server: proxied, backend: mock.url, name: 'wrong', secret: 'nope', waitRegistered: false });
    await wrong.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('the server refused the worker secret (401)'), '401 log');
    assert.equal(wrong.count('registered'), 0);
  });
});
