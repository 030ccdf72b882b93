// Worker tokens: issued by the admin API, accepted in X-Worker-Secret; revoking one disconnects its
// workers at once (their unstarted work requeued as for any lost worker) and refuses them after.
// A server may run on tokens alone, once an admin token is set.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ADMIN_TOKEN, admin, dataDir, issue } from '../helpers/admin.js';
import { SECRET, killAll, spawnServer, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { chat, upgradeStatus } from './faults-util.js';

after(killAll);

describe('worker tokens', () => {
  test('a token connects a worker; revoking it cuts that worker off at once, requeues its work and refuses it after', { timeout: 30_000 }, async () => {
    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir()]);
    // A answers too slowly to finish before the revoke; B at once.
    const [mockA, mockB] = await Promise.all([startMock(['--name', 'A', '--token-delay-ms', '10000']), startMock(['--name', 'B'])]);
    const token = await issue(server, 'worker-tokens', 'gpu-a');
    const workerA = await startWorker({ server, backend: mockA.url, name: 'wA', secret: token.secret, maxConcurrency: 1 });
    const listed = (await admin(server, 'GET', '/admin/workers')).body.data;
    assert.deepEqual(listed[0].credential, { kind: 'worker_token', id: token.id, name: 'gpu-a' });

    // A request that has not sent a byte yet when its worker is cut off.
    const pending = chat(server);
    await until(async () => (await mockA.stats()).active === 1, 'the request on A');
    await startWorker({ server, backend: mockB.url, name: 'wB' }); // the shared secret still works beside tokens
    assert.equal((await admin(server, 'DELETE', `/admin/worker-tokens/${token.id}`)).status, 204);
    await server.waitMsg('worker disconnected', { worker: 'wA' });
    await server.waitMsg('request requeued', { from_worker: 'wA' });
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.match(answer.content!, /^\[B\]/, 'finished on the other worker');
    await workerA.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('the server refused the worker secret (401)'), 'the revoked token refused on reconnect');
    assert.equal((await upgradeStatus(server, token.secret)).status, 401);
    const metrics = await (await admin(server, 'GET', '/metrics')).body;
    assert.match(metrics, /modelrelay_worker_disconnects_total\{cause="credential_revoked"\} 1/);
    assert.match(metrics, /modelrelay_requeues_total\{model="mock-model"\} 1/);

    // Kinds never stand in for each other: a client key is no worker credential.
    const key = await issue(server, 'keys', 'client');
    assert.equal((await upgradeStatus(server, key.secret)).status, 401);
  });

  test('tokens only: no --worker-secret once an admin token is set; without either the server refuses to start', async () => {
    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir()], {}, { sharedSecret: false });
    assert.equal((await upgradeStatus(server, SECRET)).status, 401);
    assert.equal((await upgradeStatus(server, '')).status, 401, 'an empty secret is no secret');
    const mock = await startMock();
    const token = await issue(server, 'worker-tokens', 'only');
    await startWorker({ server, backend: mock.url, name: 'w', secret: token.secret });
    assert.equal((await chat(server)).status, 200);

    const refused = spawnServer(['--listen', '127.0.0.1:0', '--data-dir', dataDir()]);
    assert.equal((await refused.exited).code, 2);
    await until(() => /--worker-secret.*--admin-token/.test(refused.stderr.join('\n')), 'the usage error');
    const short = spawnServer(['--listen', '127.0.0.1:0', '--admin-token', 'short']);
    assert.equal((await short.exited).code, 2);
    await until(() => /at least 16 characters/.test(short.stderr.join('\n')), 'the usage error');
  });
});
