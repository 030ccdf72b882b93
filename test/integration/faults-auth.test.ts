// Secret guessing on the worker endpoint: failures are rate-limited per peer address (a correct
// secret is never refused), X-Forwarded-For only names the peer with --trust-proxy and then only the
// entries our proxies appended; an empty worker secret never starts a command.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { SECRET, health, killAll, spawnCli, startMock, startServer, startWorker, type ServerProc } from '../helpers/cluster.js';
import { upgradeStatus } from './faults-util.js';

afterEach(() => killAll());

describe('worker authentication', () => {
  test('failures are rate-limited per peer, a correct secret is never refused, and X-Forwarded-For only counts with --trust-proxy', async () => {
    const [direct, proxied] = await Promise.all([startServer(), startServer(['--trust-proxy'])]);

    // trust-proxy off: the peer is the socket address, whatever X-Forwarded-For says.
    for (let i = 0; i < 10; i++) {
      const r = await upgradeStatus(direct, 'wrong-secret', { 'x-forwarded-for': `192.0.2.${i}` });
      assert.equal(r.status, 401, `attempt ${i + 1}`);
      assert.equal(r.code, 'invalid_worker_secret');
    }
    const limited = await upgradeStatus(direct, 'wrong-secret');
    assert.equal(limited.status, 429, 'the eleventh failure in a minute is rate-limited');
    assert.ok(Number(limited.retryAfter) > 0, 'Retry-After is set');
    assert.equal(limited.code, 'auth_rate_limited', 'a named code, not the status as a string');
    assert.equal((await upgradeStatus(direct, 'wrong-secret', { 'x-forwarded-for': '203.0.113.78' })).status, 429);
    // The guesser's failures never lock out the real worker sharing its address.
    assert.equal((await upgradeStatus(direct, SECRET)).status, 101, 'the right secret is accepted while failures are limited');
    // An upgrade anywhere else is a named 404 too.
    const elsewhere = await upgradeStatus(`${direct.url.replace(/^http/, 'ws')}/v1/worker/elsewhere`, SECRET);
    assert.deepEqual([elsewhere.status, elsewhere.code], [404, 'route_not_found']);
    assert.equal(direct.count('worker authentication failed'), 5, 'failure lines are rate-limited too');

    // trust-proxy on (one hop): the client is the right-most entry, the one our proxy appended.
    // Rotating the entries further left (which the client writes) does not buy a fresh budget...
    for (let i = 0; i < 10; i++) assert.equal((await upgradeStatus(proxied, 'wrong-secret', { 'x-forwarded-for': `10.0.0.${i}, 198.51.100.1` })).status, 401);
    assert.equal((await upgradeStatus(proxied, 'wrong-secret', { 'x-forwarded-for': '10.9.9.9, 198.51.100.1' })).status, 429, 'left-most rotation does not bypass the limit');
    // ...and naming a victim there does not lock the victim out.
    assert.equal((await upgradeStatus(proxied, 'wrong-secret', { 'x-forwarded-for': '198.51.100.2, 198.51.100.1' })).status, 429);
    assert.equal((await upgradeStatus(proxied, 'wrong-secret', { 'x-forwarded-for': '198.51.100.2' })).status, 401, 'the victim has its own budget');
    assert.equal((await upgradeStatus(proxied, SECRET, { 'x-forwarded-for': '198.51.100.1' })).status, 101);

    // Real workers: one sharing the guesser's address registers; a wrong secret is said plainly.
    const mock = await startMock();
    await startWorker({ server: direct, backend: mock.url, name: 'same-address' });
    const wrong = await startWorker({ server: proxied, backend: mock.url, name: 'wrong', secret: 'nope', waitRegistered: false });
    await wrong.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('the server refused the worker secret (401)'), '401 log');
    assert.equal(wrong.count('registered'), 0);
    assert.equal((await health(direct)).workers_connected, 1);
  });

  test('--trusted-proxy-hops counts proxies from the right of X-Forwarded-For', async () => {
    const server = await startServer(['--trust-proxy', '--trusted-proxy-hops', '2']);
    // Two proxies: the client is the second entry from the right, whatever is written left of it.
    for (let i = 0; i < 10; i++) assert.equal((await upgradeStatus(server, 'wrong', { 'x-forwarded-for': `10.0.0.${i}, 198.51.100.9, 192.0.2.1` })).status, 401);
    assert.equal((await upgradeStatus(server, 'wrong', { 'x-forwarded-for': '198.51.100.9, 192.0.2.1' })).status, 429);
    assert.equal((await upgradeStatus(server, 'wrong', { 'x-forwarded-for': '198.51.100.10, 192.0.2.1' })).status, 401, 'another client behind the same proxies');
  });
});

describe('the worker secret at start', () => {
  test('an empty secret stops either command, naming the flag; a short one or one on the command line is warned about', async () => {
    for (const script of ['server', 'worker'] as const) {
      const empty = script === 'server' ? spawnServer(['--worker-secret', '']) : spawnWorker(['--worker-secret', '']);
      const exit = await empty.exited;
      assert.equal(exit.code, 2, `${script}: exit code`);
      assert.match(empty.stderr.join('\n'), /worker secret is empty.*--worker-secret/, `${script}: names the flag`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'mr-secret-'));
    const file = join(dir, 'secret');
    writeFileSync(file, '   \n');
    const blankFile = spawnServer(['--worker-secret-file', file]);
    assert.equal((await blankFile.exited).code, 2, 'a blank secret file is refused too');

    const short = await startServer();
    await short.waitMsg('the worker secret was given on the command line, where other users of this machine can read it (ps): prefer WORKER_SECRET or --worker-secret-file');
    assert.ok(short.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('the worker secret is only 11 characters long')));

    // From a file: no warning, and a worker with the same file registers.
    writeFileSync(file, 'a-long-random-secret-0123456789\n');
    const fromFile = await startServerWith(['--worker-secret-file', file]);
    assert.ok(!fromFile.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('worker secret')), 'no warning for a long secret from a file');
    const mock = await startMock();
    await startWorker({ server: fromFile, backend: mock.url, name: 'filed', secret: 'unused', args: ['--worker-secret-file', file], omitSecret: true });
    assert.equal((await health(fromFile)).workers_connected, 1);
  });
});

const spawnServer = (args: string[]) => spawnCli('server', 'server.js', ['--listen', '127.0.0.1:0', ...args]);
const spawnWorker = (args: string[]) => spawnCli('worker', 'worker.js', ['--proxy-url', 'http://127.0.0.1:9', ...args]);

async function startServerWith(args: string[]): Promise<ServerProc> {
  const p = spawnServer(args) as ServerProc;
  p.url = (await p.waitMsg('listening'))['url'] as string;
  return p;
}
