// `Expect: 100-continue` (curl sends it for any body over 1 MiB): the relay answers the 100 itself and
// never passes the header on, and our worker drops it too when a server of another implementation
// forwards it. Without that the worker's HTTP client refuses the backend call (502).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { killAll, startMock, startServer, startWorker, type MockProc, type ServerProc } from '../helpers/cluster.js';

const execFileP = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'mr-expect-'));
let server: ServerProc;
let mock: MockProc;

before(async () => {
  [server, mock] = await Promise.all([startServer(), startMock(['--tokens', '3'])]);
  await startWorker({ server, backend: mock.url, name: 'w-expect' });
});
after(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** A 2 MB chat body, the kind of long prompt one keeps in a file. */
function promptFile(stream: boolean): string {
  const file = join(dir, `prompt-${stream}.json`);
  const text = 'lorem ipsum dolor sit amet '.repeat(80_000);
  writeFileSync(file, JSON.stringify({ model: 'mock-model', stream, messages: [{ role: 'user', content: text }] }));
  return file;
}

for (const stream of [false, true]) {
  test(`curl --data-binary @file with a 2 MB body gets its 200 (${stream ? 'streaming' : 'not streaming'})`, { timeout: 20_000 }, async () => {
    const file = promptFile(stream);
    const { stdout, stderr } = await execFileP('curl', ['-sS', '-v', '--max-time', '15', '-H', 'content-type: application/json', '--data-binary', `@${file}`, '-w', '\n%{http_code}', `${server.url}/v1/chat/completions`], {
      maxBuffer: 16 * 1024 * 1024,
    });
    assert.match(stderr, /^> Expect: 100-continue/im, 'curl sent no Expect header: the test proves nothing');
    assert.match(stderr, /^< HTTP\/1\.1 100 Continue/im, 'the relay did not answer the 100 itself');
    const status = stdout.slice(stdout.lastIndexOf('\n') + 1);
    assert.equal(status, '200', stdout.slice(0, 500));
    if (stream) assert.match(stdout, /data: \[DONE\]/);
    else assert.equal((JSON.parse(stdout.slice(0, stdout.lastIndexOf('\n'))) as { object: string }).object, 'chat.completion');
    const seen = (await mock.stats()).lastRequest!;
    assert.equal(seen.headers['expect'], undefined, 'the expect header reached the backend');
    assert.ok(seen.body.length > 2_000_000, 'the whole body reached the backend');
  });
}

test('our worker drops an expect header that another server forwarded', { timeout: 15_000 }, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const connected = once(wss, 'connection');
  await startWorker({ server: `http://127.0.0.1:${(wss.address() as { port: number }).port}`, backend: mock.url, name: 'w-foreign', waitRegistered: false });
  const [ws] = (await connected) as [WebSocket];
  const answer = new Promise<Record<string, unknown>>((resolve) => {
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Record<string, unknown>;
      if (f['type'] === 'register') {
        ws.send(JSON.stringify({ type: 'register_ack', worker_id: 'w1', models: ['mock-model'], protocol_version: '2026-04-bridge-v1' }));
        const body = JSON.stringify({ model: 'mock-model', messages: [] });
        ws.send(JSON.stringify({ type: 'request', request_id: 'r1', model: 'mock-model', endpoint_path: '/v1/chat/completions', is_streaming: false, body, headers: { 'content-type': 'application/json', expect: '100-continue' } }));
      }
      if (f['type'] === 'response_complete') resolve(f);
    });
  });
  const done = await answer;
  assert.equal(done['status_code'], 200, String(done['body']));
  ws.close();
  wss.close();
});
