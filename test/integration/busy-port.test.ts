// A taken port: modelrelay-server and the demo say which port is taken and how to choose another,
// and exit non-zero (instead of a bare `listen EADDRINUSE`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let holder: Server;
let port: number;

before(async () => {
  holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  port = (holder.address() as AddressInfo).port;
});
after(() => holder.close());

function run(script: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}dist/cli/${script}`, ...args], { cwd: ROOT, timeout: 15_000, env: { PATH: process.env['PATH'] ?? '' } }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr });
    });
  });
}

test('modelrelay-server on a taken port names it, says --listen, exits non-zero', async () => {
  const r = await run('server.js', ['--listen', `127.0.0.1:${port}`, '--worker-secret', 's', '--log-level', 'silent']);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(`port ${port} is already in use`), r.stderr);
  assert.ok(r.stderr.includes('--listen 127.0.0.1:PORT'), r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line, not a stack trace:\n${r.stderr}`);
});

test('the demo on a taken port names it, says --port, exits non-zero', async () => {
  const r = await run('demo.js', ['--port', String(port)]);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(`port ${port} is already in use`), r.stderr);
  assert.ok(r.stderr.includes('npm run demo -- --port PORT'), r.stderr);
});
