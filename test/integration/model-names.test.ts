// Model names clients keep while operators change models (issue 18): public names on the worker
// (--models PUBLIC=BACKEND, --model-map with --models auto, name ≡ name:latest) and aliases on the
// server (--model-alias NAME=TARGET|TARGET), each with the body's `model` rewritten byte-exactly.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { killAll, spawnServer, startMock, startServer, startWorker, until, type MockProc, type Proc, type ServerProc } from '../helpers/cluster.js';

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
      startServer(['--model-alias', 'gpt-4o-mini=qwen-a|qwen-b', '--model-alias', 'default=chat', '--model-alias', 'nobody=gone-1|gone-2']),
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
