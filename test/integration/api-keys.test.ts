// --require-api-keys: client keys issued by the admin API guard the inference routes and /v1/models,
// are read before any body, never reach a worker or backend, stop working the moment they are
// revoked (on open connections and in-flight streams too), and survive a restart with their usage.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { ADMIN_TOKEN, admin, dataDir, issue } from '../helpers/admin.js';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { StreamReader, chatBody, messagesBody, post } from './faults-util.js';

after(killAll);

/** One keep-alive connection, reused for every call (so a revoke is seen on an open connection). */
function keepAliveClient(base: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(base);
  return {
    agent,
    call(key: string): Promise<{ status: number; reused: boolean }> {
      return new Promise((resolve, reject) => {
        const req = httpRequest(
          { host: url.hostname, port: url.port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
          },
        );
        req.on('error', reject);
        req.end(chatBody());
      });
    },
  };
}

describe('client API keys', () => {
  test('keys guard the API in each route\'s error shape, are stripped before the worker, and stop at revoke', { timeout: 60_000 }, async () => {
    const dir = dataDir();
    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--require-api-keys', '--data-dir', dir]);
    const mock = await startMock();
    await startWorker({ server, backend: mock.url, name: 'w1' });
    const alice = await issue(server, 'keys', 'alice');
    const bob = await issue(server, 'keys', 'bob');
    assert.match(alice.secret, /^mr-[A-Za-z0-9_-]{32}$/, 'prefixed, 192 random bits');

    // Missing and unknown keys: 401 in the route's shape, nothing reaches the backend.
    const none = await post(server, '/v1/chat/completions', chatBody());
    assert.equal(none.status, 401);
    const noneBody = (await none.json()) as any;
    assert.equal(noneBody.error.code, 'invalid_api_key');
    assert.match(noneBody.error.message, /Authorization: Bearer/);
    const anth = await post(server, '/v1/messages', messagesBody(), { 'x-api-key': 'mr-not-a-real-key' });
    assert.equal(anth.status, 401);
    assert.deepEqual(Object.keys((await anth.json()) as object), ['type', 'error']);
    assert.equal((await fetch(`${server.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/models`, { headers: { 'x-api-key': bob.secret } })).status, 200);
    const wtoken = await issue(server, 'worker-tokens', 'gpu-x');
    assert.equal((await post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${wtoken.secret}` })).status, 401, 'a worker token is not a client key');
    assert.equal((await mock.stats()).requests, 0, 'nothing reached the backend');

    // The real SDKs: openai sends Authorization: Bearer, anthropic sends x-api-key.
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: alice.secret, maxRetries: 0 });
    const done = await openai.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(done.choices[0]?.message.content);
    let seen = (await mock.stats()).lastRequest!.headers;
    assert.equal(seen['authorization'], undefined, 'the key never reaches the backend');
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: bob.secret, maxRetries: 0 });
    const msg = await anthropic.messages.create({ model: 'mock-model', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    seen = (await mock.stats()).lastRequest!.headers;
    assert.equal(seen['x-api-key'], undefined, 'x-api-key never reaches the backend');
    assert.equal(seen['authorization'], undefined);

    // Revoke on a connection kept open across the revoke; and a stream in flight ends.
    const client = keepAliveClient(server.url);
    assert.equal((await client.call(alice.secret)).status, 200);
    const stream = new StreamReader(await post(server, '/v1/chat/completions', chatBody({ stream: true }), { authorization: `Bearer ${alice.secret}`, 'x-mock-tokens': '200', 'x-mock-delay-ms': '20' }));
    await stream.until((t) => t.includes('data: {'));
    assert.equal((await admin(server, 'DELETE', `/admin/keys/${alice.id}`)).status, 204);
    const afterRevoke = await client.call(alice.secret);
    assert.deepEqual(afterRevoke, { status: 401, reused: true }, 'refused on the same open connection');
    await stream.until(() => false);
    assert.match(stream.text, /revoked/, 'the stream in flight ended with an error event');
    await until(async () => (await mock.stats()).aborted >= 1, 'the backend call to be aborted');
    assert.equal((await client.call(bob.secret)).status, 200, 'other keys keep working');
    assert.equal((await admin(server, 'DELETE', `/admin/keys/${alice.id}`)).status, 404, 'already revoked');
    client.agent.destroy();
    await until(() => server.count('client authentication failed') >= 5, 'auth failures logged');
    await until(() => server.lines.filter((l) => l.msg === 'request finished' && l['key'] === 'bob').length >= 2, 'the request log naming the key');
    assert.ok(!server.lines.some((l) => JSON.stringify(l).includes(bob.secret)), 'no key in the logs');

    // Restart on the same data dir: the revoked key stays revoked, usage is kept.
    server.signal('SIGTERM');
    await server.exited;
    const again = await startServer(['--admin-token', ADMIN_TOKEN, '--require-api-keys', '--data-dir', dir]);
    await startWorker({ server: again, backend: mock.url, name: 'w2' });
    assert.equal((await post(again, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${alice.secret}` })).status, 401);
    assert.equal((await post(again, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${bob.secret}` })).status, 200);
    const keys = await admin(again, 'GET', '/admin/keys');
    assert.equal(keys.status, 200);
    assert.deepEqual(keys.body.data.map((k: any) => k.name), ['bob']);
    const usage = keys.body.data[0].usage;
    assert.equal(usage.requests.ok, 3, 'an SDK call and a keep-alive call before the restart, one after');
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, JSON.stringify(usage));
    assert.ok(usage.last_used_at);
    assert.ok(!JSON.stringify(keys.body).includes(bob.secret), 'lists never show secrets');
  });

  test('the key is checked from the headers, before the body is read', async () => {
    const server = await startServer(['--require-api-keys', '--data-dir', dataDir()]);
    const url = new URL(server.url);
    const sock = connect(Number(url.port), url.hostname);
    let answer = '';
    sock.on('data', (d) => (answer += d.toString()));
    // Headers announce a body that never comes: a server that waited for it would never answer.
    sock.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n');
    await until(() => answer.includes('\r\n\r\n') && answer.includes('invalid_api_key'), 'a 401 before the body');
    assert.match(answer, /^HTTP\/1\.1 401/);
    assert.match(answer, /connection: close/i);
    sock.destroy();
  });

  test('without --require-api-keys nothing changes: no key needed, headers forwarded as before', async () => {
    const server = await startServer();
    const mock = await startMock();
    await startWorker({ server, backend: mock.url, name: 'w' });
    const r = await post(server, '/v1/chat/completions', chatBody(), { authorization: 'Bearer whatever-the-backend-wants' });
    assert.equal(r.status, 200);
    assert.equal((await mock.stats()).lastRequest!.headers['authorization'], 'Bearer whatever-the-backend-wants');
    assert.equal((await fetch(`${server.url}/v1/models`)).status, 200);
  });
});
