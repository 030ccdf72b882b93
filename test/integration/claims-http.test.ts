// The HTTP surface as the README describes it: unknown routes and methods, bad bodies, the Anthropic
// count_tokens route, the worker's --backend-api-key, and X-Request-Id on the relay's own refusals
// (429, 503, 504, 502).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { health, killAll, startServer, startWorker, until, type ServerProc } from '../helpers/cluster.js';
import { within } from '../helpers/bounded.js';
import { post, rawWorker, type RawPeer } from './faults-util.js';
import { startScriptedBackend, type ScriptedBackend } from './fakes.js';

const T = { timeout: 30_000 };
let server: ServerProc;
let backend: ScriptedBackend;
const peers: RawPeer[] = [];

before(async () => {
  [server, backend] = await Promise.all([startServer(), startScriptedBackend()]);
  await Promise.all([
    startWorker({ server, backend: backend.url, name: 'keyed', models: 'keyed-model', args: ['--backend-api-key', 'sk-backend-secret'] }),
    startWorker({ server, backend: backend.url, name: 'plain', models: 'plain-model' }),
  ]);
});

after(async () => {
  for (const p of peers) p.ws.terminate();
  await Promise.all([killAll(), backend.close()]);
});

type OpenAIError = { error: { message: string; type: string; code: string } };
type AnthropicError = { type: string; error: { type: string; message: string } };

async function answer<B>(res: Promise<Response> | Response, what: string): Promise<{ status: number; headers: Headers; body: B }> {
  const r = await within(Promise.resolve(res), what);
  const text = await within(r.text(), `the body of ${what}`);
  return { status: r.status, headers: r.headers, body: JSON.parse(text) as B };
}

test('an unknown route is a 404 route_not_found and a wrong method a 405 method_not_allowed with Allow, in the route family\'s error shape', T, async () => {
  const nope = await answer<OpenAIError>(fetch(`${server.url}/no/such/route`), 'GET /no/such/route');
  assert.equal(nope.status, 404);
  assert.equal(nope.body.error.code, 'route_not_found');
  assert.equal(nope.body.error.type, 'invalid_request_error');
  assert.match(nope.body.error.message, /\/no\/such\/route/);

  const anthropicNope = await answer<AnthropicError>(post(server, '/v1/messages/no-such-thing', '{}'), 'POST /v1/messages/no-such-thing');
  assert.equal(anthropicNope.status, 404);
  assert.equal(anthropicNope.body.type, 'error');
  assert.equal(anthropicNope.body.error.type, 'not_found_error');

  const getChat = await answer<OpenAIError>(fetch(`${server.url}/v1/chat/completions`), 'GET /v1/chat/completions');
  assert.equal(getChat.status, 405);
  assert.equal(getChat.headers.get('allow'), 'POST');
  assert.equal(getChat.body.error.code, 'method_not_allowed');

  const getMessages = await answer<AnthropicError>(fetch(`${server.url}/v1/messages`), 'GET /v1/messages');
  assert.equal(getMessages.status, 405);
  assert.equal(getMessages.headers.get('allow'), 'POST');
  assert.equal(getMessages.body.type, 'error');
  assert.equal(getMessages.body.error.type, 'invalid_request_error');

  const postModels = await answer<OpenAIError>(post(server, '/v1/models', '{}'), 'POST /v1/models');
  assert.equal(postModels.status, 405);
  assert.equal(postModels.headers.get('allow'), 'GET');
  assert.equal(postModels.body.error.code, 'method_not_allowed');
});

test('a body that is not UTF-8, and an empty model, are answered 400 in both shapes without reaching a worker', T, async () => {
  const calls = backend.calls.all.length;
  // {"model":"plain-model","x":"<0xff>"}: valid JSON punctuation around a byte that is no UTF-8.
  const notUtf8 = Buffer.concat([Buffer.from('{"model":"plain-model","x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  for (const path of ['/v1/chat/completions', '/v1/messages']) {
    const bad = await answer<OpenAIError & AnthropicError>(fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: notUtf8 }), `${path} with a non-UTF-8 body`);
    assert.equal(bad.status, 400, path);
    assert.match(bad.body.error.message, /UTF-8/, path);
    const empty = await answer<OpenAIError & AnthropicError>(post(server, path, JSON.stringify({ model: '', messages: [] })), `${path} with an empty model`);
    assert.equal(empty.status, 400, path);
    assert.match(empty.body.error.message, /model/, path);
    if (path === '/v1/messages') {
      assert.equal(bad.body.type, 'error');
      assert.equal(empty.body.error.type, 'invalid_request_error');
    } else {
      assert.equal(bad.body.error.code, 'invalid_request');
      assert.equal(empty.body.error.code, 'invalid_request');
    }
  }
  assert.equal(backend.calls.all.length, calls, 'a bad body reached the backend');
});

test('/v1/messages/count_tokens is forwarded to the backend as it is, and its answer comes back', T, async () => {
  const body = JSON.stringify({ model: 'plain-model', messages: [{ role: 'user', content: 'count me, ünïcödé' }] });
  const res = await answer<{ input_tokens: number }>(post(server, '/v1/messages/count_tokens', body, { 'anthropic-version': '2023-06-01' }), 'count_tokens');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { input_tokens: 7 });
  assert.match(res.headers.get('x-request-id') ?? '', /^req_/);
  const call = await backend.calls.next((c) => c.path === '/v1/messages/count_tokens', 'the count_tokens call at the backend');
  assert.equal(call.method, 'POST');
  assert.equal(call.body, body, 'the body reached the backend byte for byte');
  assert.equal(call.headers['anthropic-version'], '2023-06-01');
  // Its errors are Anthropic-shaped, like the rest of /v1/messages.
  const missing = await answer<AnthropicError>(post(server, '/v1/messages/count_tokens', JSON.stringify({ model: 'no-such-model', messages: [] })), 'count_tokens for an unknown model');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.type, 'error');
  assert.equal(missing.body.error.type, 'not_found_error');
});

test("--backend-api-key replaces the client's Authorization toward the backend; without it the client's goes through", T, async () => {
  const chat = (model: string): Promise<Response> =>
    post(server, '/v1/chat/completions', JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }), { authorization: 'Bearer sk-client-key' });
  assert.equal((await answer(chat('keyed-model'), 'a request through the keyed worker')).status, 200);
  const keyed = await backend.calls.next((c) => c.body.includes('"keyed-model"'), 'the keyed worker\'s call at the backend');
  assert.equal(keyed.headers['authorization'], 'Bearer sk-backend-secret');
  assert.equal((await answer(chat('plain-model'), 'a request through the plain worker')).status, 200);
  const plain = await backend.calls.next((c) => c.body.includes('"plain-model"') && c.path === '/v1/chat/completions', 'the plain worker\'s call at the backend');
  assert.equal(plain.headers['authorization'], 'Bearer sk-client-key');
});

/** Checks an answer carries X-Request-Id and the relay's log line for that id shows the same status. */
async function assertRequestId(on: ServerProc, res: { status: number; headers: Headers }, code: string): Promise<void> {
  const id = res.headers.get('x-request-id');
  assert.match(id ?? '', /^req_[0-9a-z]+$/, `X-Request-Id on the ${res.status} ${code}`);
  const line = await on.waitMsg('request finished', { request_id: id! });
  assert.equal(line['status'], res.status);
  assert.equal(line['error'], code);
}

test('the relay\'s own 429 and 503 carry X-Request-Id', T, async () => {
  const queueing = await startServer(['--max-queue-len', '1', '--queue-timeout', '1']);
  const holder = await rawWorker(queueing, 'holder', ['held-model']);
  peers.push(holder);
  const body = JSON.stringify({ model: 'held-model', messages: [] });
  // The holder never answers: its slot stays taken, so the next request queues and the one after is refused.
  void post(queueing, '/v1/chat/completions', body).catch(() => undefined);
  await holder.waitFrame((f) => f.type === 'request', 'the first request on the holder');
  const queued = answer<OpenAIError>(post(queueing, '/v1/chat/completions', body), 'the queued request (queue timeout)');
  await until(async () => (await health(queueing)).queue_depth === 1, 'the second request to queue');
  const full = await answer<OpenAIError>(post(queueing, '/v1/chat/completions', body), 'a request beyond the queue');
  assert.equal(full.status, 429);
  assert.equal(full.body.error.code, 'queue_full');
  await assertRequestId(queueing, full, 'queue_full');
  const timedOut = await queued;
  assert.equal(timedOut.status, 503);
  assert.equal(timedOut.body.error.code, 'queue_timeout');
  await assertRequestId(queueing, timedOut, 'queue_timeout');
});

test('the relay\'s own 504 and 502s (requeue exhausted, a worker that could not serve) carry X-Request-Id', T, async () => {
  const strict = await startServer(['--request-timeout', '1', '--max-requeues', '0']);
  const [mute, dies, fails] = await Promise.all([
    rawWorker(strict, 'mute', ['mute-model']),
    rawWorker(strict, 'dies', ['dies-model']),
    rawWorker(strict, 'fails', ['fails-model'], { extensions: ['request-error'] }),
  ]);
  peers.push(mute, dies, fails);
  const ask = (model: string): Promise<{ status: number; headers: Headers; body: OpenAIError }> =>
    answer<OpenAIError>(post(strict, '/v1/chat/completions', JSON.stringify({ model, messages: [] })), `the answer for ${model}`);
  const [timeout, exhausted, failed] = [ask('mute-model'), ask('dies-model'), ask('fails-model')];
  await dies.waitFrame((f) => f.type === 'request', 'the request on the dying worker');
  dies.ws.terminate();
  const req = await fails.waitFrame((f) => f.type === 'request', 'the request on the failing worker');
  fails.send({ type: 'error', request_id: req.request_id, code: 'backend_failed', message: 'the GPU caught fire' });

  const t = await timeout;
  assert.equal(t.status, 504);
  assert.equal(t.body.error.code, 'request_timeout');
  await assertRequestId(strict, t, 'request_timeout');
  const e = await exhausted;
  assert.equal(e.status, 502);
  assert.equal(e.body.error.code, 'requeue_exhausted');
  await assertRequestId(strict, e, 'requeue_exhausted');
  const f = await failed;
  assert.equal(f.status, 502);
  assert.equal(f.body.error.code, 'backend_error');
  assert.match(f.body.error.message, /GPU caught fire/);
  await assertRequestId(strict, f, 'backend_error');
});
