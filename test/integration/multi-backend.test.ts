// One worker, several backends (a config file's `backends`): one connection registers the models of
// all of them; each request runs on the backend serving its model, within that backend's own
// concurrency limit and with its own API key; each backend has its own health, so a dead one is out
// of rotation (its models withdrawn) while the others serve, and it is back when it returns; with
// every backend down the worker says so, as a single-backend worker does (issue 15).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SECRET, killAll, spawnCli, startMock, startServer, startWorker, until, type MockProc, type ServerProc, freePort } from '../helpers/cluster.js';
import { chatBody, post } from './faults-util.js';

/** These tests spread identical requests over workers: the least-loaded rule (round-robin among
 * equals), not cache-aware routing, which would keep sending an identical prompt to one worker. */
const SPREAD = ['--routing', 'least-loaded'];

const dir = mkdtempSync(join(tmpdir(), 'mr-multi-'));
after(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});


const mockOn = (port: number, args: string[]): Promise<MockProc> => startMock(['--listen', `127.0.0.1:${port}`, ...args]);

async function chatWith(server: ServerProc, model: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await post(server, '/v1/chat/completions', chatBody({ model }), headers);
  return { status: res.status, body: await res.json() };
}

/** A worker with two backends: A serves model-a (listed; A calls it a-on-disk; limit 1, key-a), B
 * reads its models (limit 2). */
function twoBackendWorker(server: ServerProc, a: MockProc, b: MockProc, name: string) {
  const file = join(dir, `${name}.toml`);
  writeFileSync(
    file,
    `proxy-url = "${server.url}"
worker-name = "${name}"
health-interval = 1

[[backends]]
backend-url = "${a.url}"
models = ["model-a=a-on-disk"]
max-concurrency = 1
backend-api-key = "key-a"

[[backends]]
backend-url = "${b.url}"
max-concurrency = 2
`,
  );
  chmodSync(file, 0o600);
  return spawnCli(`worker ${name}`, 'worker.js', ['--config', file], { WORKER_SECRET: SECRET });
}

describe('one worker, several backends', () => {
  test('one registration for both; requests go by model, within each backend\'s limit and with its key', async () => {
    const server = await startServer(SPREAD);
    const [a, b] = await Promise.all([startMock(['--name', 'A', '--models', 'model-a']), startMock(['--name', 'B', '--models', 'model-b,model-c'])]);
    const w = twoBackendWorker(server, a, b, 'two-gpus');
    await w.waitMsg('registered');
    const reg = await server.waitMsg('worker registered', { worker: 'two-gpus' });
    assert.equal(reg['max_concurrent'], 3, 'the sum of the backends\' limits');
    assert.deepEqual([...(reg['models'] as string[])].sort(), ['model-a', 'model-b', 'model-c']);
    assert.equal(server.count('worker registered'), 1, 'one connection');

    assert.equal((await chatWith(server, 'model-a')).status, 200);
    assert.equal((await chatWith(server, 'model-c')).status, 200);
    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    assert.equal(sa.requests, 1);
    assert.equal(sb.requests, 1);
    assert.equal(sa.lastRequest?.headers['authorization'], 'Bearer key-a', "A's key reached A");
    assert.equal(JSON.parse(sa.lastRequest!.body).model, 'a-on-disk', "A's own name for its model");
    assert.equal(JSON.parse(sb.lastRequest!.body).model, 'model-c');
    assert.equal(sb.lastRequest?.headers['authorization'], undefined, 'and only A');

    // Three at once for model-a: A never runs more than one, and every one is answered.
    await a.reset();
    const slow = { 'x-mock-delay-ms': '300' };
    const three = await Promise.all([0, 1, 2].map(() => chatWith(server, 'model-a', slow)));
    assert.deepEqual(three.map((r) => r.status), [200, 200, 200]);
    const after3 = await a.stats();
    assert.equal(after3.maxActive, 1, "A's limit of 1 held");
    assert.equal(after3.requests, 3);
    assert.equal((await b.stats()).requests, 1, 'none of them went to B');
  });

  test("more requests at once than a backend's limit: the server keeps each backend's slots (backend-slots), so none is refused and none fails", async () => {
    const server = await startServer([...SPREAD, '--max-requeues', '1']);
    const [a, b] = await Promise.all([startMock(['--name', 'A', '--models', 'model-a']), startMock(['--name', 'B', '--models', 'model-b'])]);
    const w = twoBackendWorker(server, a, b, 'busy-gpus');
    await w.waitMsg('registered');
    // Right after registering, the worker says which models share which backend's slots.
    const groups = await server.waitMsg('worker slot groups', { worker: 'busy-gpus' });
    assert.deepEqual(groups['slot_groups'], [{ models: ['model-a'], max_concurrency: 1 }, { models: ['model-b'], max_concurrency: 2 }]);
    // The server sees 3 slots; model-a has 1 of them. Eight at once, with model-b traffic beside.
    const slow = { 'x-mock-delay-ms': '30' };
    const all = await Promise.all([...Array.from({ length: 8 }, () => chatWith(server, 'model-a', slow)), ...Array.from({ length: 4 }, () => chatWith(server, 'model-b', slow))]);
    assert.deepEqual(all.map((r) => r.status), Array(12).fill(200), JSON.stringify(all.find((r) => r.status !== 200)?.body));
    assert.equal(server.count('worker could not serve request'), 0, 'the server never sent a backend more than its limit');
    assert.equal((await a.stats()).maxActive, 1, "A's limit held");
  });

  test('a dead backend is out of rotation on its own; the other serves; it is back when it returns; all down is reported', async () => {
    const portA = await freePort();
    const server = await startServer(SPREAD);
    const [a, b, c] = await Promise.all([
      mockOn(portA, ['--name', 'A', '--models', 'model-a']),
      startMock(['--name', 'B', '--models', 'model-b']),
      startMock(['--name', 'C', '--models', 'model-a']),
    ]);
    const w = twoBackendWorker(server, a, b, 'box');
    await w.waitMsg('registered');

    await a.kill();
    await w.waitMsg('backend down', { backend: a.url });
    // (The first update, right after registering, carried the slot groups: wait for the one after A went down.)
    const update = await server.waitFor((l) => l.msg === 'worker models updated' && l['worker'] === 'box' && !(l['models'] as string[]).includes('model-a'), "box's update without model-a");
    assert.deepEqual(update['models'], ['model-b'], "A's model is withdrawn, B's stays");
    assert.equal(server.count('worker backend down', { worker: 'box' }), 0, 'the worker as a whole is not down');
    assert.equal((await chatWith(server, 'model-b')).status, 200, 'B serves on');
    const missing = await chatWith(server, 'model-a');
    assert.equal(missing.status, 404, 'nothing serves model-a now');
    assert.equal(missing.body.error.code, 'model_not_found');
    // Another worker that serves model-a takes its requests.
    await startWorker({ server, backend: c.url, name: 'other', models: 'model-a' });
    assert.equal((await chatWith(server, 'model-a')).status, 200);
    assert.equal((await c.stats()).requests, 1);

    // A comes back on its port: its model is registered again and it takes work.
    const revived = await mockOn(portA, ['--name', 'A', '--models', 'model-a']);
    await w.waitMsg('backend up', { backend: a.url });
    await server.waitFor((l) => l.msg === 'worker models updated' && l['worker'] === 'box' && (l['models'] as string[]).includes('model-a'), "A's model back");
    await until(async () => {
      assert.equal((await chatWith(server, 'model-a')).status, 200);
      return (await revived.stats()).requests > 0;
    }, 'A serving again');

    // Every backend down: the worker says so (backend-health), and keeps its models listed, so a
    // client hears why instead of "not served".
    await Promise.all([revived.kill(), b.kill()]);
    const down = await server.waitMsg('worker backend down', { worker: 'box' });
    assert.match(String(down['reason']), /^all 2 backends are down: /);
    const r = await chatWith(server, 'model-b');
    assert.equal(r.status, 502);
    assert.equal(r.body.error.code, 'backend_unreachable');
    assert.match(r.body.error.message, /box: all 2 backends are down/);
  });

  test('backends and the single-backend flags together are refused, naming both', async () => {
    const file = join(dir, 'clash.json');
    writeFileSync(file, JSON.stringify({ 'proxy-url': 'http://127.0.0.1:1', 'worker-secret': SECRET, backends: [{ 'backend-url': 'http://127.0.0.1:2' }] }));
    const p = spawnCli('worker clash', 'worker.js', ['--config', file, '--backend-url', 'http://127.0.0.1:3']);
    assert.equal((await p.exited).code, 2);
    assert.match(p.stderr.join('\n'), /clash\.json lists backends, so --backend-url .* can't also be given/);
    writeFileSync(file, JSON.stringify({ 'proxy-url': 'http://127.0.0.1:1', 'worker-secret': SECRET, backends: [{ 'backend-url': 'http://127.0.0.1:2' }, { models: ['x'], 'max-concurency': 2 }] }));
    const q = spawnCli('worker typo', 'worker.js', ['--config', file]);
    assert.equal((await q.exited).code, 2);
    assert.match(q.stderr.join('\n'), /clash\.json: backends\[1\]: unknown key 'max-concurency' \(did you mean 'max-concurrency'\?\); allowed keys: backend-url, models, model-map, max-concurrency, backend-api-key/);
  });
});
