// Client keys' share of the GPUs (issue 13): fair turns per key, priorities from the key (lowered by
// X-Relay-Priority, never raised) with aging, max_concurrent (waits, not refused), requests and
// tokens per minute (429 + Retry-After in the route's shape), all set by POST and PATCH /admin/keys.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { ADMIN_TOKEN, admin, dataDir } from '../helpers/admin.js';
import { killAll, startMock, startServer, startWorker, until, type MockProc, type ServerProc } from '../helpers/cluster.js';
import { MODEL, chatBody, post } from './faults-util.js';

after(killAll);

async function cluster(extra: string[] = [], maxConcurrency = 1): Promise<{ server: ServerProc; mock: MockProc }> {
  const [server, mock] = await Promise.all([startServer(['--admin-token', ADMIN_TOKEN, '--require-api-keys', '--data-dir', dataDir(), ...extra]), startMock()]);
  await startWorker({ server, backend: mock.url, name: 'gpu', maxConcurrency });
  return { server, mock };
}

async function key(server: ServerProc, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const r = await admin(server, 'POST', '/admin/keys', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

const depth = async (server: ServerProc): Promise<number> => ((await (await fetch(`${server.url}/health`)).json()) as { queue_depth: number }).queue_depth;

/** Takes the only slot until the returned release() is called. */
async function hold(server: ServerProc, mock: MockProc, secret: string): Promise<() => Promise<void>> {
  const ctl = new AbortController();
  const p = post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${secret}`, 'x-mock-hang': '1' }, ctl.signal).catch(() => undefined);
  await until(async () => (await mock.stats()).active === 1, 'the slot held');
  return async () => {
    ctl.abort();
    await p;
  };
}

describe('keys share the queue', () => {
  test("a flood from one key doesn't delay another key's few requests beyond a few turns (openai SDK)", async () => {
    const { server, mock } = await cluster();
    const [flood, few, holder] = await Promise.all([key(server, { name: 'batch' }), key(server, { name: 'chat' }), key(server, { name: 'holder' })]);
    const release = await hold(server, mock, holder.secret);
    const order: string[] = [];
    const client = (secret: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: secret, maxRetries: 0 });
    const ask = async (secret: string, tag: string): Promise<void> => {
      await client(secret).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: tag }] });
      order.push(tag);
    };
    const floodDone = Array.from({ length: 20 }, (_, i) => ask(flood.secret, `flood${i}`));
    await until(async () => (await depth(server)) === 20, 'the flood queued');
    const fewDone = Array.from({ length: 3 }, (_, i) => ask(few.secret, `few${i}`));
    await until(async () => (await depth(server)) === 23, 'the few queued behind it');
    await release();
    await Promise.all([...floodDone, ...fewDone]);
    const last = Math.max(...['few0', 'few1', 'few2'].map((t) => order.indexOf(t)));
    assert.ok(last <= 5, `served within a few turns: ${order.join(' ')}`);
  });

  test('high beats normal beats low; X-Relay-Priority lowers but never raises; aging lifts a starved low request', async () => {
    const { server, mock } = await cluster(['--priority-aging', '1.5']);
    const [hi, norm, lo, holder] = await Promise.all([
      key(server, { name: 'hi', priority: 'high' }),
      key(server, { name: 'norm' }),
      key(server, { name: 'lo', priority: 'low' }),
      key(server, { name: 'holder' }),
    ]);
    const order: string[] = [];
    const send = (secret: string, tag: string, headers: Record<string, string> = {}): Promise<void> =>
      post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${secret}`, ...headers }).then(async (r) => {
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        order.push(tag);
      });
    let release = await hold(server, mock, holder.secret);
    const waits = [send(lo.secret, 'low'), send(norm.secret, 'normal-asks-high', { 'x-relay-priority': 'high' })];
    await until(async () => (await depth(server)) === 2, 'two queued');
    waits.push(send(hi.secret, 'high-asks-low', { 'x-relay-priority': 'low' }), send(hi.secret, 'high'));
    await until(async () => (await depth(server)) === 4, 'four queued');
    await release();
    await Promise.all(waits);
    // Both lows are low now: turns between their keys, the older first.
    assert.deepEqual(order, ['high', 'normal-asks-high', 'low', 'high-asks-low']);

    // Aging: a low request that waited --priority-aging competes as normal, and it is the older one.
    order.length = 0;
    release = await hold(server, mock, holder.secret);
    const aged = send(lo.secret, 'low');
    await until(async () => (await depth(server)) === 1, 'low queued');
    await new Promise((r) => setTimeout(r, 1600)); // the behaviour under test is the passing of time
    const fresh = send(norm.secret, 'normal');
    await until(async () => (await depth(server)) === 2, 'normal queued');
    await release();
    await Promise.all([aged, fresh]);
    assert.deepEqual(order, ['low', 'normal']);
  });
});

describe('per-key limits', () => {
  test('max_concurrent: the key runs one at a time on a worker with room for four; the rest wait, and a cancel frees its slot', async () => {
    const { server, mock } = await cluster([], 4);
    const [one, other] = await Promise.all([key(server, { name: 'one-at-a-time', max_concurrent: 1 }), key(server, { name: 'other' })]);
    const ctl = new AbortController();
    const first = post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${one.secret}`, 'x-mock-hang': '1' }, ctl.signal).catch(() => undefined);
    await until(async () => (await mock.stats()).active === 1, 'the first running');
    const second = post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${one.secret}` });
    await until(async () => (await depth(server)) === 1, 'the second waits (not refused)');
    // Another key is not held up by it.
    const r = await post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${other.secret}` });
    assert.equal(r.status, 200);
    const view = (await admin(server, 'GET', '/admin/keys')).body.data.find((k: any) => k.id === one.id);
    assert.equal(view.max_concurrent, 1);
    assert.equal(view.usage.in_flight, 2);
    ctl.abort(); // the client gives up: its slot goes back to the key
    assert.equal((await second).status, 200);
    await first;
    assert.equal((await mock.stats()).maxActive, 2, 'never two of the limited key at once (the other key made it 2)');
  });

  test('requests_per_minute and tokens_per_minute: 429 with Retry-After, in each route shape, before any worker', async () => {
    const { server, mock } = await cluster([], 4);
    const [rpm, tpm] = await Promise.all([key(server, { name: 'rpm', requests_per_minute: 2 }), key(server, { name: 'tpm', tokens_per_minute: 5 })]);
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: rpm.secret, maxRetries: 0 });
    for (let i = 0; i < 2; i++) await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    const before = (await mock.stats()).requests;
    await assert.rejects(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), (e: any) => e.status === 429 && e.error?.code === 'key_rate_limited');
    const raw = await post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${rpm.secret}` });
    assert.equal(raw.status, 429);
    const retry = Number(raw.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: rpm.secret, maxRetries: 0 });
    await assert.rejects(anthropic.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }), (e: any) => e.status === 429 && e.error?.type === 'error');
    assert.equal((await mock.stats()).requests, before, 'refused before any worker');

    // Tokens: the first request's usage spends the budget; the next is refused.
    const t = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: tpm.secret, maxRetries: 0 });
    const first = await t.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    assert.ok((first.usage?.total_tokens ?? 0) >= 5, `the mock reports usage: ${JSON.stringify(first.usage)}`);
    await until(async () => (await admin(server, 'GET', '/admin/keys')).body.data.find((k: any) => k.id === tpm.id).usage.tokens_last_minute >= 5, 'tokens counted');
    await assert.rejects(t.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), (e: any) => e.status === 429);
  });

  test('PATCH /admin/keys/{id} changes the policy at once; bad fields are 400 naming them; unknown ids 404', async () => {
    const { server } = await cluster();
    const k = await key(server, { name: 'k' });
    const bad = await admin(server, 'POST', '/admin/keys', { name: 'x', priority: 'urgent' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /'priority'/);
    assert.equal((await admin(server, 'PATCH', `/admin/keys/${k.id}`, { max_concurrent: 0 })).status, 400);
    assert.equal((await admin(server, 'PATCH', '/admin/keys/nope', { priority: 'low' })).status, 404);
    const patched = await admin(server, 'PATCH', `/admin/keys/${k.id}`, { requests_per_minute: 1, priority: 'low' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.priority, 'low');
    assert.equal(patched.body.requests_per_minute, 1);
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: k.secret, maxRetries: 0 });
    await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    await assert.rejects(openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }), (e: any) => e.status === 429);
    const cleared = await admin(server, 'PATCH', `/admin/keys/${k.id}`, { requests_per_minute: null });
    assert.equal(cleared.body.requests_per_minute, null);
    await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
  });
});
