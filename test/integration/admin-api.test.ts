// The admin API: its door (401 / 403 / 429, never open by default), workers (list, drain, refresh
// models), stats after traffic, and the key and worker-token collections with every status.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ADMIN_TOKEN, admin, dataDir } from '../helpers/admin.js';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat } from './faults-util.js';

after(killAll);

describe('admin API', () => {
  test('without --admin-token every admin route is 403; missing token 401, wrong 403, repeated failures 429 but never the right token', async () => {
    const closed = await startServer();
    const r = await admin(closed, 'GET', '/admin/workers');
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'admin_disabled');
    assert.equal((await admin(closed, 'GET', '/admin/keys', undefined, null)).status, 403);
    assert.equal((await fetch(`${closed.url}/metrics`)).status, 200, 'without an admin token /metrics is open');

    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir()]);
    const missing = await admin(server, 'GET', '/admin/workers', undefined, null);
    assert.equal(missing.status, 401);
    assert.deepEqual(Object.keys(missing.body.error).sort(), ['code', 'message', 'type']);
    assert.equal(missing.body.error.code, 'admin_token_missing');
    for (let i = 0; i < 9; i++) assert.equal((await admin(server, 'GET', '/admin/stats', undefined, `wrong-${i}`)).status, 403, `attempt ${i + 2}`);
    const limited = await admin(server, 'GET', '/admin/stats', undefined, 'wrong-again');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'auth_rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After');
    assert.equal((await admin(server, 'GET', '/admin/workers')).status, 200, 'the right token is never refused');
    assert.equal((await admin(server, 'POST', '/admin/keys', { name: 'x' }, null)).status, 429, 'a body is never read before authentication');
    // Logged at most five times per 10 s per peer (then summarised); counted every time.
    await until(() => server.count('admin authentication failed') === 5, 'the failures logged');
    const metrics = await fetch(`${server.url}/metrics`);
    assert.equal(metrics.status, 429, '/metrics is behind the same door when an admin token is set');
    const text = (await admin(server, 'GET', '/metrics')).body as string;
    assert.match(text, /^modelrelay_auth_failures_total\{kind="admin"\} 10$/m);
    assert.equal((await admin(server, 'GET', '/admin/nothing-here')).status, 404);
  });

  test('keys and worker tokens: 201 once with the secret, listed without it, 204 / 404 on delete, 400 naming the field, 405', async () => {
    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir()]);
    for (const kind of ['keys', 'worker-tokens']) {
      const created = await admin(server, 'POST', `/admin/${kind}`, { name: 'team-a' });
      assert.equal(created.status, 201);
      // A client key also carries its policy (issue 13); a worker token has none.
      const policy = kind === 'keys' ? ['max_concurrent', 'models', 'priority', 'requests_per_minute', 'tokens_per_minute'] : [];
      assert.deepEqual(Object.keys(created.body).sort(), ['created_at', 'id', 'name', 'prefix', 'secret', ...policy].sort());
      assert.ok(created.body.secret.startsWith(created.body.prefix));
      assert.match(created.body.secret, kind === 'keys' ? /^mr-/ : /^mrw-/);
      const list = await admin(server, 'GET', `/admin/${kind}`);
      assert.equal(list.status, 200);
      assert.equal(list.body.data.length, 1);
      assert.equal(list.body.data[0].id, created.body.id);
      assert.equal(list.body.data[0].secret, undefined);
      assert.ok(!JSON.stringify(list.body).includes(created.body.secret));
      for (const bad of [{}, { name: '' }, { name: 7 }, { name: 'x'.repeat(129) }, '[1]', 'not json']) {
        const r = await admin(server, 'POST', `/admin/${kind}`, bad);
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.match(r.body.error.message, /'name'/);
      }
      assert.equal((await admin(server, 'PUT', `/admin/${kind}`, { name: 'x' })).status, 405);
      assert.equal((await admin(server, 'DELETE', `/admin/${kind}/${created.body.id}`)).status, 204);
      assert.equal((await admin(server, 'DELETE', `/admin/${kind}/${created.body.id}`)).status, 404);
      assert.equal((await admin(server, 'DELETE', `/admin/${kind}/no-such-id`)).status, 404);
      assert.deepEqual((await admin(server, 'GET', `/admin/${kind}`)).body.data, []);
    }
  });

  test('workers: listed with their details; drain and refresh-models act on them; stats after traffic', { timeout: 30_000 }, async () => {
    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir(), '--drain-timeout', '10']);
    const [mockA, mockB] = await Promise.all([startMock(['--name', 'A']), startMock(['--name', 'B'])]);
    await startWorker({ server, backend: mockA.url, name: 'wA', maxConcurrency: 2 });
    await startWorker({ server, backend: mockB.url, name: 'wB', models: 'mock-model,other' });
    const list = await admin(server, 'GET', '/admin/workers');
    assert.equal(list.status, 200);
    const a = list.body.data.find((w: any) => w.name === 'wA');
    assert.deepEqual(
      Object.keys(a).sort(),
      ['backend', 'breaker', 'connected_at', 'credential', 'extensions', 'id', 'in_flight', 'last_seen_at', 'max_concurrent', 'models', 'name', 'peer', 'protocol_version', 'provider', 'state'],
    );
    assert.equal(a.max_concurrent, 2);
    assert.equal(a.state, 'active');
    assert.deepEqual(a.credential, { kind: 'shared_secret' });
    assert.ok(a.extensions.includes('cancel-ack'));
    assert.match(a.peer, /127\.0\.0\.1/);

    for (let i = 0; i < 6; i++) assert.equal((await chat(server)).status, 200);
    assert.equal((await chat(server, { 'x-mock-status': '400' })).status, 400);
    const stats = await admin(server, 'GET', '/admin/stats');
    assert.equal(stats.status, 200);
    const m = stats.body.models['mock-model'];
    assert.equal(m.requests.ok, 6);
    assert.equal(m.requests.client_error, 1);
    assert.equal(m.latency_ms.samples, 7);
    assert.ok(m.latency_ms.total.p50 >= 0 && m.latency_ms.total.p99 >= m.latency_ms.total.p50);
    assert.ok(m.latency_ms.first_byte.p50 !== null && m.latency_ms.queue_wait.p50 !== null);
    assert.ok(m.tokens.completion > 0);
    assert.equal(Object.values<any>(stats.body.workers).reduce((n, w) => n + w.requests.ok, 0), 6);
    assert.equal(stats.body.recent_errors[0].status, 400);
    // 5-second buckets: the seven may straddle a boundary, so count them over the series.
    assert.equal(stats.body.series.points.reduce((n: number, p: { requests: number }) => n + p.requests, 0), 7);

    const refresh = await admin(server, 'POST', `/admin/workers/${a.id}/refresh-models`);
    assert.equal(refresh.status, 202);
    await server.waitMsg('worker models updated', { worker: 'wA' });
    const drain = await admin(server, 'POST', `/admin/workers/${a.id}/drain`);
    assert.equal(drain.status, 202);
    assert.equal(drain.body.state, 'draining');
    await server.waitMsg('draining worker', { worker: 'wA' });
    await until(async () => !(await admin(server, 'GET', '/admin/workers')).body.data.some((w: any) => w.id === a.id), 'the drained worker to leave');
    for (const action of ['drain', 'refresh-models']) {
      assert.equal((await admin(server, 'POST', `/admin/workers/${a.id}/${action}`)).status, 404, `${action} of a worker that left`);
      assert.equal((await admin(server, 'GET', `/admin/workers/${a.id}/${action}`)).status, 405);
    }
    assert.equal((await admin(server, 'POST', '/admin/workers')).status, 405);
  });
});
