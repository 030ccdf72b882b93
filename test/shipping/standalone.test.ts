// The standalone executables (npm run package): a copy of dist/bin/ in a folder of its own, run
// there with an empty PATH and no other environment, so neither Node nor node_modules can be found.
// --help and --version; a streamed request through server → worker → the simulated backend, all
// three run from the binary; and client keys kept in the store through the binary's own SQLite
// addon, across a restart.
import assert from 'node:assert/strict';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ADMIN_TOKEN, admin, dataDir } from '../helpers/admin.js';
import { SECRET, killAll, type MockProc, type Proc, type ServerProc } from '../helpers/cluster.js';
import { copyOfBin, ensureStandalone, spawnBinary } from '../helpers/standalone.js';
import { chatBody, chatStreamContent, post } from '../integration/faults-util.js';

after(killAll);

const built = ensureStandalone();
const skip = built.ok ? false : built.skip;
if (!built.ok) console.log(`# standalone executables ${built.skip}`);
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function run(dir: string, exe: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnBinary(exe, dir, exe, args);
  const { code } = await p.exited;
  return { code, out: p.lines.map((l) => l.msg ?? '').join('\n') };
}

async function startBinaryServer(dir: string, args: string[]): Promise<ServerProc> {
  const p = spawnBinary('server (binary)', dir, 'modelrelay-server', ['--listen', '127.0.0.1:0', ...args], { WORKER_SECRET: SECRET, ADMIN_TOKEN }) as ServerProc;
  p.url = (await p.waitMsg('listening'))['url'] as string;
  return p;
}

describe('standalone executables', { skip }, () => {
  test('one binary; the commands are links to it; --help and --version, from an empty PATH', async () => {
    const dir = copyOfBin();
    assert.ok(lstatSync(join(dir, 'modelrelay')).isFile());
    for (const link of ['modelrelay-server', 'modelrelay-worker', 'modelrelay-mock-backend']) assert.ok(lstatSync(join(dir, link)).isSymbolicLink(), `${link} is a link`);
    const usage = await run(dir, 'modelrelay', ['--help']);
    assert.equal(usage.code, 0);
    assert.match(usage.out, /modelrelay server \[flags\]/);
    const sub = await run(dir, 'modelrelay', ['worker', '--version']);
    assert.deepEqual(sub, { code: 0, out: VERSION }, 'the command as the first argument');
    for (const exe of ['modelrelay-server', 'modelrelay-worker']) {
      const help = await run(dir, exe, ['--help']);
      assert.equal(help.code, 0, `${exe} --help exits 0`);
      assert.match(help.out, new RegExp(`^${exe}: `), `${exe} --help names the command`);
      assert.match(help.out, /--log-level/);
      const version = await run(dir, exe, ['--version']);
      assert.deepEqual(version, { code: 0, out: VERSION });
    }
  });

  test('a streamed request through the binary server and worker; keys persist in the store across a restart', { timeout: 60_000 }, async () => {
    const dir = copyOfBin();
    const data = dataDir();
    const mock = spawnBinary('mock (binary)', dir, 'modelrelay-mock-backend', ['--listen', '127.0.0.1:0', '--tokens', '6']) as MockProc;
    mock.url = (await mock.waitMsg('mock backend listening'))['url'] as string;
    const mockStats = async (): Promise<{ requests: number }> => (await (await fetch(`${mock.url}/_mock/stats`)).json()) as { requests: number };
    let server = await startBinaryServer(dir, ['--require-api-keys', '--data-dir', data]);
    const worker: Proc = spawnBinary('worker (binary)', dir, 'modelrelay-worker', ['--proxy-url', server.url, '--backend-url', mock.url, '--models', 'mock-model', '--worker-name', 'bin-1'], { WORKER_SECRET: SECRET });
    await worker.waitMsg('registered');
    const key = await admin(server, 'POST', '/admin/keys', { name: 'binary' });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    const secret = (key.body as { secret: string }).secret;

    const res = await post(server, '/v1/chat/completions', chatBody({ stream: true }), { authorization: `Bearer ${secret}` });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    assert.ok(text.trimEnd().endsWith('data: [DONE]'), 'the stream ends with [DONE]');
    assert.ok(chatStreamContent(text).length > 0, 'content arrived as SSE deltas');
    assert.equal((await mockStats()).requests, 1, 'the simulated backend answered it');

    // The dashboard's files are inside the binary.
    const page = await fetch(`${server.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);

    // Restart on the same data directory: the key opened the store through the addon beside the binary.
    server.signal('SIGTERM');
    assert.equal((await server.exited).code, 0);
    server = await startBinaryServer(dir, ['--require-api-keys', '--data-dir', data]);
    assert.equal((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).status, 200, 'the key survived the restart');
    assert.equal((await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer mr-not-a-key' } })).status, 401);
    const keys = await admin(server, 'GET', '/admin/keys');
    assert.deepEqual((keys.body as { data: { name: string }[] }).data.map((k) => k.name), ['binary']);
  });
});
