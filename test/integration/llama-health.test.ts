// A real llama-server that crashes mid-session and comes back (issue 15): its worker is taken out of
// rotation at once (no client error while another worker serves the model) and put back when the
// restarted llama-server has loaded its model.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ensureLlama, startLlama, type LlamaServer } from '../helpers/llama.js';
import { killAll, startMock, startServer, startWorker, until, freePort } from '../helpers/cluster.js';

/** These tests spread identical requests over workers: the least-loaded rule (round-robin among
 * equals), not cache-aware routing, which would keep sending an identical prompt to one worker. */
const SPREAD = ['--routing', 'least-loaded'];

const ready = await ensureLlama();
const skip = 'skip' in ready ? ready.skip : false;

let llama: LlamaServer | undefined;
after(async () => {
  await killAll();
  await llama?.close();
});


test('llama-server killed mid-session is taken out of rotation, and put back once restarted', { timeout: 120_000, skip }, async () => {
  const port = await freePort();
  llama = await startLlama({ alias: 'tiny-h', slots: 1, ctx: 2048, port });
  const [server, mock] = await Promise.all([startServer(SPREAD), startMock(['--name', 'standby', '--models', 'tiny-h'])]);
  await Promise.all([
    startWorker({ server, backend: llama.url, name: 'llama', models: 'auto' }),
    startWorker({ server, backend: mock.url, name: 'standby', models: 'tiny-h' }),
  ]);
  const ask = async (): Promise<{ status: number; fromLlama: boolean }> => {
    const r = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-h', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await r.text();
    return { status: r.status, fromLlama: r.status === 200 && !text.includes('[standby]') };
  };
  await until(async () => (await ask()).fromLlama, 'llama-server serving through the relay', 20_000);

  await llama.kill(); // a crash: out of memory, a driver reset
  const during: number[] = [];
  for (let i = 0; i < 10; i++) during.push((await ask()).status);
  assert.deepEqual(during, Array(10).fill(200), 'no client error while the standby worker serves the model');
  await server.waitMsg('worker backend down', { worker: 'llama' });

  llama = await startLlama({ alias: 'tiny-h', slots: 1, ctx: 2048, port });
  await server.waitMsg('worker backend up', { worker: 'llama' }, 20_000);
  await until(async () => {
    const r = await ask();
    assert.equal(r.status, 200);
    return r.fromLlama;
  }, 'the restarted llama-server serving again', 20_000);
});
