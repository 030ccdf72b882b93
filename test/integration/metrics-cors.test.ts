// /metrics in Prometheus text format, moving with traffic; CORS on and off; and a store that can't
// be opened stopping the server at start with the file's name.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ADMIN_TOKEN, admin, dataDir } from '../helpers/admin.js';
import { killAll, spawnServer, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { StreamReader, chat, chatBody, post } from './faults-util.js';

after(killAll);

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  test('every documented series is there and moves with traffic; --metrics-public opens it', { timeout: 30_000 }, async () => {
    const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir(), '--metrics-public', '--max-queue-len', '10']);
    const mock = await startMock();
    await startWorker({ server, backend: mock.url, name: 'w1', maxConcurrency: 1 });
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200, '--metrics-public: no token needed');
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const before = await res.text();
    for (const name of [
      'modelrelay_requests_total',
      'modelrelay_queue_depth',
      'modelrelay_queue_wait_seconds',
      'modelrelay_time_to_first_byte_seconds',
      'modelrelay_request_duration_seconds',
      'modelrelay_tokens_total',
      'modelrelay_workers_connected',
      'modelrelay_worker_in_flight',
      'modelrelay_requeues_total',
      'modelrelay_cancels_total',
      'modelrelay_worker_disconnects_total',
      'modelrelay_auth_failures_total',
    ]) {
      assert.match(before, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.equal(sample(before, 'modelrelay_workers_connected'), 1);

    // One running, one waiting: queue depth and in-flight are read at scrape time.
    const abort = new AbortController();
    const running = new StreamReader(await post(server, '/v1/chat/completions', chatBody({ stream: true }), { 'x-mock-tokens': '200', 'x-mock-delay-ms': '20' }, abort.signal));
    await running.until((t) => t.includes('data: {'));
    const waiting = chat(server);
    await until(async () => sample(await (await fetch(`${server.url}/metrics`)).text(), 'modelrelay_queue_depth{model="mock-model"}') === 1, 'queue depth 1');
    const mid = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(mid, /modelrelay_worker_in_flight\{worker_id="[^"]+",worker="w1"\} 1/);
    abort.abort();
    assert.equal((await waiting).status, 200);
    assert.equal((await chat(server, { 'x-mock-status': '503' })).status, 503);
    await post(server, '/v1/chat/completions', 'not json');

    await until(async () => sample(await (await fetch(`${server.url}/metrics`)).text(), 'modelrelay_requests_total{model="mock-model",route="/v1/chat/completions",status="200"}') === 2, 'the two 200s counted (the cancelled stream had sent its 200)');
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(sample(text, 'modelrelay_requests_total{model="mock-model",route="/v1/chat/completions",status="503"}'), 1);
    assert.equal(sample(text, 'modelrelay_requests_total{model="",route="/v1/chat/completions",status="400"}'), 1, 'refused before it had a model');
    assert.equal(sample(text, 'modelrelay_cancels_total{reason="client_disconnect"}'), 1);
    assert.ok(sample(text, 'modelrelay_queue_wait_seconds_count{model="mock-model"}')! >= 3);
    assert.ok(sample(text, 'modelrelay_time_to_first_byte_seconds_count{model="mock-model"}')! >= 3);
    assert.ok(sample(text, 'modelrelay_tokens_total{model="mock-model",kind="completion"}')! > 0);
    assert.equal(sample(text, 'modelrelay_queue_depth{model="mock-model"}'), undefined, 'queue empty again');
    await admin(server, 'GET', '/admin/workers', undefined, 'wrong-token');
    assert.equal(sample(await (await fetch(`${server.url}/metrics`)).text(), 'modelrelay_auth_failures_total{kind="admin"}'), 1);
    const line = await server.waitMsg('request finished', { status: 503 });
    for (const field of ['request_id', 'model', 'worker', 'queue_ms', 'first_byte_ms', 'total_ms', 'outcome']) assert.ok(field in line, `log line has ${field}`);
  });
});

describe('CORS', () => {
  test('off by default: no CORS headers, OPTIONS is 405 as before', async () => {
    const server = await startServer();
    const pre = await fetch(`${server.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 405);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    const r = await fetch(`${server.url}/v1/models`, { headers: { origin: 'https://app.example' } });
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  });

  test('with --cors-origins: preflight 204 for a listed origin with the SDK headers; answers carry the origin; admin never', async () => {
    const server = await startServer(['--cors-origins', 'https://app.example, http://localhost:3000', '--require-api-keys', '--admin-token', ADMIN_TOKEN, '--data-dir', dataDir()]);
    const pre = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os, openai-organization, x-evil' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(pre.headers.get('access-control-allow-methods')!, /POST/);
    assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type, x-stainless-os, openai-organization');
    const anth = await fetch(`${server.url}/v1/messages`, { method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' } });
    assert.equal(anth.status, 204);
    assert.match(anth.headers.get('access-control-allow-headers')!, /x-api-key.*anthropic-version.*anthropic-beta/);
    const other = await fetch(`${server.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null, 'an unlisted origin gets nothing');
    // The actual answer (a 401 here) carries the header too, so the browser can read the error.
    const denied = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body: chatBody() });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(denied.headers.get('access-control-expose-headers')!, /x-request-id/);
    const adminPre = await fetch(`${server.url}/admin/keys`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(adminPre.headers.get('access-control-allow-origin'), null);
    const adminGet = await fetch(`${server.url}/admin/keys`, { headers: { origin: 'https://app.example', authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(adminGet.status, 200);
    assert.equal(adminGet.headers.get('access-control-allow-origin'), null, 'the admin API never allows cross-origin calls');

    const star = await startServer(['--cors-origins', '*']);
    const any = await fetch(`${star.url}/v1/models`, { headers: { origin: 'https://anything.example' } });
    assert.equal(any.headers.get('access-control-allow-origin'), '*');
  });
});

test('a store that cannot be opened stops the server at start, naming the file', async () => {
  const dir = dataDir();
  writeFileSync(join(dir, 'modelrelay.db'), 'definitely not an SQLite file, but long enough to have a header of sorts');
  const p = spawnServer(['--listen', '127.0.0.1:0', '--worker-secret', 's', '--data-dir', dir]);
  assert.equal((await p.exited).code, 1);
  await until(() => p.stderr.join('\n').includes(join(dir, 'modelrelay.db')), 'the message naming the file');
  assert.match(p.stderr.join('\n'), /cannot open the store/);
});
