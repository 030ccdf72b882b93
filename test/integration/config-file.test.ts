// Both commands started from config files alone (TOML for the server, JSON for the worker), with
// their secrets in files of their own; a mistake in a file stops the command with exit code 2 and
// a line naming the file and the key.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { admin, dataDir } from '../helpers/admin.js';
import { killAll, spawnCli, spawnServer, startMock, type ServerProc } from '../helpers/cluster.js';
import { chatBody, post } from './faults-util.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-config-it-'));
after(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, 0o600);
  return p;
}

test('a server and a worker from config files, secrets read from files', { timeout: 60_000 }, async () => {
  const secretFile = write('worker-secret', 'config-file-worker-secret-0123\n');
  const adminFile = write('admin-token', 'config-file-admin-token-0123456\n');
  const serverToml = write(
    'server.toml',
    `# the relay\nlisten = "127.0.0.1:0"\nworker-secret-file = "${secretFile}"\nadmin-token-file = "${adminFile}"\nrequire-api-keys = true\ndata-dir = "${dataDir()}"\nmax-queue-len = 5\n`,
  );
  const server = spawnServer(['--config', serverToml]) as ServerProc;
  server.url = (await server.waitMsg('listening'))['url'] as string;
  assert.equal((await server.waitMsg('config file read'))['config'], serverToml);

  const mock = await startMock(['--tokens', '3']);
  const workerJson = write('worker.json', JSON.stringify({ 'proxy-url': server.url, 'worker-secret-file': secretFile, 'backend-url': mock.url, models: ['mock-model', 'other-model'], 'worker-name': 'from-json' }));
  const worker = spawnCli('worker', 'worker.js', ['--config', workerJson]);
  const registered = await worker.waitMsg('registered');
  assert.deepEqual(registered['models'], ['mock-model', 'other-model']);

  const key = await admin(server, 'POST', '/admin/keys', { name: 'cfg' }, 'config-file-admin-token-0123456');
  assert.equal(key.status, 201, 'the admin token came from its file');
  const res = await post(server, '/v1/chat/completions', chatBody(), { authorization: `Bearer ${(key.body as { secret: string }).secret}` });
  assert.equal(res.status, 200);
  assert.equal((await post(server, '/v1/chat/completions', chatBody())).status, 401, 'require-api-keys came from the file');
});

test('a mistake in the file stops the command: exit 2, the file and the key named', async () => {
  const bad = write('bad.toml', 'listen = "127.0.0.1:0"\nworker-secret = "abcdefghijklmnopqrstuvwxyz"\nmax-queue-len = -3\n');
  const p = spawnServer(['--config', bad]);
  assert.equal((await p.exited).code, 2);
  assert.match(p.stderr.join('\n'), new RegExp(`^error: ${bad.replace(/\./g, '\\.')}: key 'max-queue-len' must be a non-negative number, got -3 \\(see --help\\)$`));
  const typo = write('typo.json', JSON.stringify({ 'proxy-url': 'http://127.0.0.1:1', 'worker-secret': 'abcdefghijklmnopqrstuvwxyz', 'backend-urls': 'http://x' }));
  const w = spawnCli('worker', 'worker.js', ['--config', typo]);
  assert.equal((await w.exited).code, 2);
  assert.match(w.stderr.join('\n'), /typo\.json: unknown key 'backend-urls' \(did you mean 'backend-url'\?\); allowed keys: proxy-url, /);
});
