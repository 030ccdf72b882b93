// GET /v1/models and GET /v1/models/{id} through both SDKs: OpenAI's shape by default, Anthropic's
// when the request carries anthropic-version. Model ids may contain '/'.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI, { NotFoundError } from 'openai';
import Anthropic, { NotFoundError as AnthropicNotFound } from '@anthropic-ai/sdk';
import { killAll, startMock, startServer, startWorker, type ServerProc } from '../helpers/cluster.js';

const MODELS = ['Qwen/Qwen2.5-7B-Instruct', 'llama3.2:3b', 'tiny'];
let server: ServerProc;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  const mock = await startMock(['--models', MODELS.join(',')]);
  server = await startServer();
  await startWorker({ server, backend: mock.url, name: 'w-models', models: MODELS.join(',') });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-test', maxRetries: 0 });
});
after(killAll);

test('openai models.retrieve answers the model object, also for an id with a slash', async () => {
  for (const id of MODELS) {
    const m = await openai.models.retrieve(id);
    assert.equal(m.id, id);
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(m.owned_by, 'modelrelay');
  }
  // The same id with its slash unencoded.
  const raw = await fetch(`${server.url}/v1/models/Qwen/Qwen2.5-7B-Instruct`);
  assert.equal(raw.status, 200);
  assert.equal(((await raw.json()) as { id: string }).id, 'Qwen/Qwen2.5-7B-Instruct');
});

test('openai models.retrieve of an unserved model is 404 model_not_found in the OpenAI shape', async () => {
  await assert.rejects(openai.models.retrieve('no-such/model'), (e: unknown) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal((e.error as { code?: string }).code, 'model_not_found');
    assert.match(e.message, /no-such\/model/);
    return true;
  });
});

test('openai models.list still answers the OpenAI list', async () => {
  const ids: string[] = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids, MODELS);
});

test('anthropic models.list answers the Anthropic page shape, and pages by after_id', async () => {
  const page = await anthropic.models.list();
  assert.deepEqual(page.data.map((m) => m.id), MODELS);
  const raw = await (await fetch(`${server.url}/v1/models`, { headers: { 'anthropic-version': '2023-06-01' } })).json();
  assert.deepEqual(Object.keys(raw as object).sort(), ['data', 'first_id', 'has_more', 'last_id']);
  const r = raw as { has_more: boolean; first_id: string; last_id: string; data: { type: string; display_name: string; created_at: string }[] };
  assert.equal(r.has_more, false);
  assert.equal(r.first_id, MODELS[0]);
  assert.equal(r.last_id, MODELS.at(-1));
  assert.equal(r.data[0]!.type, 'model');
  assert.equal(typeof r.data[0]!.display_name, 'string');
  assert.ok(!Number.isNaN(Date.parse(r.data[0]!.created_at)), 'created_at is an RFC 3339 date');
  // One per page: the SDK follows has_more / last_id through all of them.
  const ids: string[] = [];
  for await (const m of anthropic.models.list({ limit: 1 })) ids.push(m.id);
  assert.deepEqual(ids, MODELS);
  const back = (await (await fetch(`${server.url}/v1/models?limit=1&before_id=tiny`, { headers: { 'anthropic-version': '2023-06-01' } })).json()) as { data: { id: string }[]; has_more: boolean };
  assert.deepEqual(back.data.map((m) => m.id), ['llama3.2:3b']);
  assert.equal(back.has_more, true);
});

test('anthropic models.retrieve answers type "model", and 404 not_found_error in the Anthropic shape', async () => {
  const m = await anthropic.models.retrieve('Qwen/Qwen2.5-7B-Instruct');
  assert.equal(m.type, 'model');
  assert.equal(m.id, 'Qwen/Qwen2.5-7B-Instruct');
  assert.equal(m.display_name, 'Qwen/Qwen2.5-7B-Instruct');
  assert.ok(!Number.isNaN(Date.parse(m.created_at)));
  await assert.rejects(anthropic.models.retrieve('claude-nothing'), (e: unknown) => {
    assert.ok(e instanceof AnthropicNotFound);
    assert.deepEqual(Object.keys(e.error as object).sort(), ['error', 'type']);
    assert.equal((e.error as { error: { type: string } }).error.type, 'not_found_error');
    return true;
  });
});

test('POST /v1/models/{id} is 405', async () => {
  const res = await fetch(`${server.url}/v1/models/tiny`, { method: 'POST' });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'GET');
});
