// Model names clients keep while operators change models (issue 18): public names on the worker
// (--models PUBLIC=BACKEND, --model-map with --models auto, name ≡ name:latest) and aliases on the
// server (--model-alias NAME=TARGET|TARGET), each with the body's `model` rewritten byte-exactly.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic, { PermissionDeniedError as AnthropicPermissionDenied } from '@anthropic-ai/sdk';
import OpenAI, { PermissionDeniedError } from 'openai';
import { ADMIN_TOKEN, admin, dataDir } from '../helpers/admin.js';
import { killAll, spawnServer, startMock, startServer, startWorker, until, type MockProc, type Proc, type ServerProc } from '../helpers/cluster.js';

/** These tests spread identical requests over workers: the least-loaded rule (round-robin among
 * equals), not cache-aware routing, which would keep sending an identical prompt to one worker. */
const SPREAD = ['--routing', 'least-loaded'];

after(killAll);

/** A body with everything a re-serialisation would change: odd spacing, escapes, number formats,
 * non-ASCII text, and nested `model` keys that must stay as they are. */
function tricky(model: string): string {
  return (
    ` {\n  "messages" : [ {"role":"user","content":"say \\"model\\": \\"x\\" \\\\ \\u00e9 \\/ 😀 é"} ],\r\n\t"model"\t:  ${JSON.stringify(model)} ,` +
    `"max_tokens":5, "temperature":1.0E0,"top_p":1e-0,"seed":12345678901234567890,"metadata":{"model":"keep-me"},` +
    `"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string"}}}}}]}\n`
  );
}

async function post(server: ServerProc, body: string, path = '/v1/chat/completions'): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function modelIds(server: ServerProc): Promise<{ id: string; alias_of?: string[] }[]> {
  const res = await fetch(`${server.url}/v1/models`);
  return ((await res.json()) as { data: { id: string; alias_of?: string[] }[] }).data.map(({ id, alias_of }) => (alias_of ? { id, alias_of } : { id }));
}

/** The body the mock last received, after a request is known to have reached it. */
async function lastBody(mock: MockProc): Promise<string> {
  const s = await mock.stats();
  assert.ok(s.lastRequest, 'the backend got a request');
  return s.lastRequest.body;
}

describe('worker public names', () => {
  let server: ServerProc;
  let mock: MockProc;
  let ollama: MockProc;

  before(async () => {
    [server, mock, ollama] = await Promise.all([startServer(), startMock(), startMock(['--ollama-only', '--models', 'llama3.2:latest,qwen2.5:7b-instruct,mistral:latest'])]);
    await Promise.all([
      startWorker({ server, backend: mock.url, name: 'w-listed', models: 'chat=qwen2.5:7b-instruct,embed=nomic-embed-text,phi3' }),
      startWorker({ server, backend: ollama.url, name: 'w-auto', models: 'auto', args: ['--model-map', 'qwen2.5:7b-instruct=code', '--model-map', 'mistral=fast'] }),
    ]);
  });

  test('the worker advertises public names, not the backend names behind them', async () => {
    assert.deepEqual(
      (await modelIds(server)).map((m) => m.id),
      ['chat', 'code', 'embed', 'fast', 'llama3.2', 'llama3.2:latest', 'phi3'],
    );
  });

  test("a public name is routed, and the backend gets the body with only its model rewritten, byte for byte", async () => {
    const r = await post(server, tricky('chat'));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(await lastBody(mock), tricky('qwen2.5:7b-instruct'));
    // The answer passes through as the backend wrote it: it names the backend's model.
    assert.equal(r.json['model'], 'qwen2.5:7b-instruct');
  });

  test('a plain name reaches the backend unchanged', async () => {
    const r = await post(server, tricky('phi3'));
    assert.equal(r.status, 200);
    assert.equal(await lastBody(mock), tricky('phi3'));
  });

  test('embeddings through a public name', async () => {
    const body = '{"model":"embed","input":["a","b"]}';
    const r = await post(server, body, '/v1/embeddings');
    assert.equal(r.status, 200);
    assert.equal(await lastBody(mock), '{"model":"nomic-embed-text","input":["a","b"]}');
  });

  test("--models auto with --model-map, and name ≡ name:latest (an Ollama's /api/tags)", async () => {
    const cases: [string, string][] = [
      ['code', 'qwen2.5:7b-instruct'],
      ['fast', 'mistral:latest'], // the map's 'mistral' matched 'mistral:latest'
      ['llama3.2', 'llama3.2:latest'],
      ['llama3.2:latest', 'llama3.2:latest'],
    ];
    for (const [asked, backend] of cases) {
      const r = await post(server, tricky(asked));
      assert.equal(r.status, 200, `${asked}: ${JSON.stringify(r.json)}`);
      assert.equal(await lastBody(ollama), tricky(backend), asked);
    }
    // The backend's own name of a renamed model is not advertised.
    const hidden = await post(server, tricky('qwen2.5:7b-instruct'));
    assert.equal(hidden.status, 404);
    assert.equal((hidden.json['error'] as { code: string }).code, 'model_not_found');
  });
});

describe('server aliases', () => {
  let server: ServerProc;
  let mockA: MockProc;
  let mockB: MockProc;
  let mockC: MockProc;
  let workerA: Proc;
  let workerB: Proc;

  before(async () => {
    [server, mockA, mockB, mockC] = await Promise.all([
      startServer([...SPREAD, '--model-alias', 'gpt-4o-mini=qwen-a|qwen-b', '--model-alias', 'default=chat', '--model-alias', 'nobody=gone-1|gone-2']),
      startMock(),
      startMock(),
      startMock(),
    ]);
    [workerA, workerB] = await Promise.all([
      startWorker({ server, backend: mockA.url, name: 'w-a', models: 'qwen-a' }),
      startWorker({ server, backend: mockB.url, name: 'w-b', models: 'qwen-b' }),
      // A server alias onto a worker's public name: two renames, one after the other.
      startWorker({ server, backend: mockC.url, name: 'w-c', models: 'chat=qwen2.5:7b-instruct' }),
    ]);
  });

  test('GET /v1/models lists served aliases, marked with alias_of; an alias with no served target is left out', async () => {
    assert.deepEqual(await modelIds(server), [
      { id: 'chat' },
      { id: 'default', alias_of: ['chat'] },
      { id: 'gpt-4o-mini', alias_of: ['qwen-a', 'qwen-b'] },
      { id: 'qwen-a' },
      { id: 'qwen-b' },
    ]);
  });

  test('GET /v1/models/{alias} answers for it, in both shapes; an unserved alias is 404 naming its targets', async () => {
    const res = await fetch(`${server.url}/v1/models/gpt-4o-mini`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { id: 'gpt-4o-mini', object: 'model', created: ((await (await fetch(`${server.url}/v1/models/qwen-a`)).json()) as { created: number }).created, owned_by: 'modelrelay', alias_of: ['qwen-a', 'qwen-b'] });
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-test', maxRetries: 0 });
    const m = await anthropic.models.retrieve('gpt-4o-mini');
    assert.equal(m.id, 'gpt-4o-mini');
    assert.deepEqual((m as unknown as { alias_of: string[] }).alias_of, ['qwen-a', 'qwen-b']);
    const missing = await fetch(`${server.url}/v1/models/nobody`);
    assert.equal(missing.status, 404);
    const err = ((await missing.json()) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /'nobody' is an alias of gone-1, gone-2; no connected worker serves any of them/);
  });

  test('a request for the alias spreads over both targets, each backend getting its target in the body', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await post(server, tricky('gpt-4o-mini'));
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    const [a, b] = await Promise.all([mockA.stats(), mockB.stats()]);
    assert.ok(a.requests > 0 && b.requests > 0, `both targets served: ${a.requests} and ${b.requests}`);
    assert.equal(a.requests + b.requests, 6);
    assert.equal(a.lastRequest!.body, tricky('qwen-a'));
    assert.equal(b.lastRequest!.body, tricky('qwen-b'));
  });

  test('large bodies, the model early or late, arrive with only the model changed', async () => {
    const content = 'words "quoted" \\ and 😀 '.repeat(2000);
    const early = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":${JSON.stringify(content)}}],"max_tokens":3}`;
    const late = `{"messages":[{"role":"user","content":${JSON.stringify(content)}}],"max_tokens":3,"model":"gpt-4o-mini"}`;
    for (const body of [early, late]) {
      await Promise.all([mockA.reset(), mockB.reset()]);
      assert.equal((await post(server, body)).status, 200);
      const [a, b] = await Promise.all([mockA.stats(), mockB.stats()]);
      const [got, target] = a.lastRequest ? [a.lastRequest.body, 'qwen-a'] : [b.lastRequest!.body, 'qwen-b'];
      assert.equal(got, body.replace('"gpt-4o-mini"', JSON.stringify(target)));
    }
  });

  test("a server alias onto a worker's public name reaches the backend under its own name", async () => {
    const r = await post(server, tricky('default'));
    assert.equal(r.status, 200);
    assert.equal(await lastBody(mockC), tricky('qwen2.5:7b-instruct'));
  });

  test("when one target's last worker leaves, the alias falls over to the other; with none left, 404", async () => {
    await workerB.kill();
    await until(async () => !(await modelIds(server)).some((m) => m.id === 'qwen-b'), 'the server to drop qwen-b');
    await mockA.reset();
    for (let i = 0; i < 3; i++) assert.equal((await post(server, tricky('gpt-4o-mini'))).status, 200);
    assert.equal((await mockA.stats()).requests, 3);
    assert.deepEqual((await modelIds(server)).find((m) => m.id === 'gpt-4o-mini'), { id: 'gpt-4o-mini', alias_of: ['qwen-a', 'qwen-b'] });
    await workerA.kill();
    await until(async () => !(await modelIds(server)).some((m) => m.id === 'gpt-4o-mini'), 'the alias to leave the list');
    const r = await post(server, tricky('gpt-4o-mini'));
    assert.equal(r.status, 404);
    const err = r.json['error'] as { code: string; message: string };
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /'gpt-4o-mini' is an alias of qwen-a, qwen-b/);
  });
});

describe('alias configuration', () => {
  test('MODEL_ALIASES is read, its entries separated by ;', async () => {
    const server = await startServer([], { MODEL_ALIASES: 'a=m1|m2; b=m3' });
    for (const [name, targets] of [['a', 'm1, m2'], ['b', 'm3']] as const) {
      const res = await fetch(`${server.url}/v1/models/${name}`);
      assert.equal(res.status, 404);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, new RegExp(`'${name}' is an alias of ${targets};`));
    }
    await server.kill();
  });

  test('a bad alias stops the start with exit code 2 and says which', async () => {
    const p = spawnServer(['--listen', '127.0.0.1:0', '--worker-secret', 'test-secret', '--model-alias', 'x=y', '--model-alias', 'y=z']);
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(p.stderr.join('\n'), /--model-alias \(MODEL_ALIASES\): the alias 'x' lists the alias 'y'/);
  });
});

describe('per-key model allowlists', () => {
  let server: ServerProc;
  let mock: MockProc;
  let limited: { id: string; secret: string; models: string[] | null };
  let open: { id: string; secret: string; models: string[] | null };

  before(async () => {
    [server, mock] = await Promise.all([
      startServer(['--admin-token', ADMIN_TOKEN, '--require-api-keys', '--data-dir', dataDir(), '--model-alias', 'gpt-4o-mini=qwen-a', '--model-alias', 'code=qwen-a']),
      startMock(),
    ]);
    await startWorker({ server, backend: mock.url, name: 'w-keys', models: 'qwen-a' });
    const [a, b] = await Promise.all([admin(server, 'POST', '/admin/keys', { name: 'one-alias', models: ['gpt-4o-mini'] }), admin(server, 'POST', '/admin/keys', { name: 'any' })]);
    assert.equal(a.status, 201, JSON.stringify(a.body));
    [limited, open] = [a.body, b.body];
  });

  test('set at creation, shown in GET /admin/keys (null = any model); a bad list is 400 naming the field', async () => {
    assert.deepEqual(limited.models, ['gpt-4o-mini']);
    assert.equal(open.models, null);
    const list = await admin(server, 'GET', '/admin/keys');
    assert.deepEqual(
      (list.body.data as { name: string; models: string[] | null }[]).map((k) => [k.name, k.models]),
      [
        ['one-alias', ['gpt-4o-mini']],
        ['any', null],
      ],
    );
    for (const models of [[], 'gpt-4o-mini', [1], [''], ['x'.repeat(300)]]) {
      const r = await admin(server, 'POST', '/admin/keys', { name: 'bad', models });
      assert.equal(r.status, 400, JSON.stringify(models));
      assert.match(r.body.error.message, /'models' must be a list of 1 to 256 model or alias names/);
    }
  });

  test('a key limited to one alias may use it, and gets 403 in the route shape for another alias or the target itself', async () => {
    const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: limited.secret, maxRetries: 0 });
    const ok = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.object, 'chat.completion');
    for (const model of ['code', 'qwen-a']) {
      await assert.rejects(openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => {
        assert.ok(e instanceof PermissionDeniedError, String(e));
        assert.equal(e.status, 403);
        assert.equal((e.error as { code?: string; type?: string }).code, 'model_not_allowed');
        assert.equal((e.error as { type?: string }).type, 'permission_error');
        assert.match(e.message, new RegExp(`may not use the model '${model}'; it may use: gpt-4o-mini`));
        return true;
      });
    }
    const anthropic = new Anthropic({ baseURL: server.url, apiKey: limited.secret, maxRetries: 0 });
    await assert.rejects(anthropic.messages.create({ model: 'code', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => {
      assert.ok(e instanceof AnthropicPermissionDenied, String(e));
      assert.deepEqual((e.error as { type: string; error: { type: string } }).error.type, 'permission_error');
      return true;
    });
    // The other key may use anything.
    const any = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: open.secret, maxRetries: 0 });
    assert.equal((await any.chat.completions.create({ model: 'code', messages: [{ role: 'user', content: 'hi' }] })).object, 'chat.completion');
  });

  test('a body naming two top-level models is refused for a limited key (a backend might read the other)', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${limited.secret}`, 'content-type': 'application/json' },
      body: '{"model":"qwen-a","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}',
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /more than one top-level 'model'/);
  });

  test("GET /v1/models lists only what the key may use; another id is 403", async () => {
    const list = await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${limited.secret}` } });
    assert.deepEqual(((await list.json()) as { data: { id: string }[] }).data.map((m) => m.id), ['gpt-4o-mini']);
    const other = await fetch(`${server.url}/v1/models/code`, { headers: { authorization: `Bearer ${limited.secret}` } });
    assert.equal(other.status, 403);
    const all = await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${open.secret}` } });
    assert.deepEqual(((await all.json()) as { data: { id: string }[] }).data.map((m) => m.id), ['code', 'gpt-4o-mini', 'qwen-a']);
  });

  test('PATCH changes the list; null lifts it', async () => {
    const widened = await admin(server, 'PATCH', `/admin/keys/${limited.id}`, { models: ['gpt-4o-mini', 'code'] });
    assert.equal(widened.status, 200, JSON.stringify(widened.body));
    assert.deepEqual(widened.body.models, ['gpt-4o-mini', 'code']);
    const body = '{"model":"code","messages":[{"role":"user","content":"hi"}]}';
    const ask = async (model: string): Promise<number> => {
      const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${limited.secret}`, 'content-type': 'application/json' }, body: body.replace('"code"', JSON.stringify(model)) });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await ask('code'), 200);
    assert.equal(await ask('qwen-a'), 403);
    const lifted = await admin(server, 'PATCH', `/admin/keys/${limited.id}`, { models: null });
    assert.equal(lifted.body.models, null);
    assert.equal(await ask('qwen-a'), 200);
  });
});
