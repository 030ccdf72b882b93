// Backpressure: a client reading a 200 MB stream at a trickle must not make the server buffer it,
// and must not slow the other streams its worker carries (flow-control credits, per stream).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, test } from 'node:test';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';

after(killAll);

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

test('a trickle reader of a 200 MB stream keeps server memory bounded while other streams run at full speed', async () => {
  const mock = await startMock(['--name', 'bp']);
  const server = await startServer();
  await startWorker({ server, backend: mock.url, name: 'bp-w', maxConcurrency: 4 });
  const url = new URL(`${server.url}/v1/chat/completions`);
  const baseline = rssBytes(server.pid);

  // 3,200 events of 64 KiB: about 200 MB if anyone read it all.
  let slowRead = 0;
  const slowReq = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-mock-tokens': '3200', 'x-mock-chunk-bytes': '65536', 'x-mock-delay-ms': '0' } });
  const slowStarted = new Promise<http.IncomingMessage>((resolve) => slowReq.on('response', resolve));
  slowReq.on('error', () => {});
  slowReq.end(JSON.stringify({ model: 'mock-model', stream: true, messages: [] }));
  const slowRes = await slowStarted;
  assert.equal(slowRes.statusCode, 200);
  slowRes.pause();
  // A trickle: 16 KiB every 50 ms (~320 KB/s).
  const trickle = setInterval(() => {
    const chunk = slowRes.read(16 * 1024) as Buffer | null;
    if (chunk) slowRead += chunk.length;
  }, 50);

  // Meanwhile, normal streams on the same worker finish. Each of these is quick on its own; if the
  // slow stream stalled the worker's socket they would not finish at all.
  const peakDuring: number[] = [];
  for (let round = 0; round < 3; round++) {
    const results = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-mock-tokens': '200', 'x-mock-delay-ms': '0' },
          body: JSON.stringify({ model: 'mock-model', stream: true, messages: [] }),
        });
        const text = await res.text();
        return text.endsWith('data: [DONE]\n\n');
      }),
    );
    assert.deepEqual(results, [true, true, true], 'a concurrent stream did not complete');
    peakDuring.push(rssBytes(server.pid));
  }
  // Give the unthrottled case every chance to show itself: the backend can push hundreds of MB/s on
  // loopback, so by now an unbounded relay would hold far more than the bound below.
  await until(
    () => {
      peakDuring.push(rssBytes(server.pid));
      return slowRead > 2 * 1024 * 1024;
    },
    'the slow client to read 2 MiB',
  );
  const growth = Math.max(...peakDuring) - baseline;
  const stats = await mock.stats();
  clearInterval(trickle);
  slowReq.destroy();
  assert.ok(growth < 40 * 1024 * 1024, `server RSS grew by ${Math.round(growth / 1048576)} MB while a client trickled`);
  assert.equal(stats.completed >= 9, true, 'the fast streams completed at the backend');
  assert.equal(stats.active >= 1, true, 'the slow stream is still open at the backend (held back, not buffered)');
  // And its slot is freed when that client finally leaves.
  await until(async () => (await mock.stats()).active === 0, 'the slow stream to be aborted at the backend');
});
