// TLS on the relay (--tls-cert / --tls-key): HTTPS and WSS on one port, with certificates made here
// by openssl under a CA of the test's own. A worker trusting that CA (--ca-file) serves requests; one
// that doesn't refuses the relay with a clear error and keeps retrying; --insecure-skip-verify
// connects and says so loudly; a plain-HTTP client gets a 400 naming https://; a renewed certificate
// is served after SIGHUP and after the file changes, and a broken one is refused while the old stays.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { killAll, spawnServer, startMock, startServer, startWorker, until, type MockProc, type ServerProc } from '../helpers/cluster.js';
import { chatBody } from './faults-util.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-tls-'));
const at = (f: string): string => join(dir, f);
const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

/** A certificate for localhost and 127.0.0.1, signed by the test CA, for the key in `keyFile`. */
function issueCert(keyFile: string, out: string, cn: string): string {
  openssl('req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', at('leaf.csr'));
  openssl('x509', '-req', '-in', at('leaf.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', at('leaf.ext'), '-out', out);
  return new X509Certificate(readFileSync(out)).fingerprint256;
}

let server: ServerProc;
let mock: MockProc;
let firstFingerprint: string;
const certFile = at('server.pem');
const keyFile = at('server.key');

before(async () => {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=modelrelay test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  writeFileSync(at('leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', keyFile);
  firstFingerprint = issueCert(keyFile, certFile, 'first');
  [server, mock] = await Promise.all([startServer(['--tls-cert', certFile, '--header-timeout', '3'], { TLS_KEY: keyFile }), startMock(['--tokens', '4'])]);
});
after(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

const trusting = (): Agent => new Agent({ connect: { ca: readFileSync(at('ca.pem')) } });

/** The fingerprint of the certificate the server presents now. */
function presented(): Promise<string> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: Number(port), servername: 'localhost', ca: readFileSync(at('ca.pem')) }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

describe('TLS', () => {
  test('the server says https:// and a worker with --ca-file serves requests over WSS', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await server.waitMsg('TLS certificate loaded'))['fingerprint256'], firstFingerprint);
    const w = await startWorker({ server, backend: mock.url, name: 'tls-ok', args: ['--ca-file', at('ca.pem')] });
    assert.equal(w.count('TLS certificate verification is OFF (--insecure-skip-verify): anyone on the path to the relay can read and change the traffic, the worker secret included'), 0);
    const res = await undiciFetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chatBody({ stream: true }), dispatcher: trusting() });
    assert.equal(res.status, 200);
    assert.ok((await res.text()).includes('data: [DONE]'));
    await w.kill();
  });

  test('a worker without the CA refuses the relay with a clear error, and keeps retrying', async () => {
    const before = (await undiciFetch(`${server.url}/health`, { dispatcher: trusting() }).then((r) => r.json())) as { workers_connected: number };
    const w = await startWorker({ server, backend: mock.url, name: 'tls-untrusted', waitRegistered: false });
    const msg = "refused the relay: its TLS certificate is not signed by a CA this worker trusts; give the CA's certificate with --ca-file (retrying)";
    const line = await w.waitMsg(msg);
    assert.equal(line['level'], 'error');
    await until(() => w.count(msg) >= 2, 'a second attempt, refused the same way');
    const now = (await undiciFetch(`${server.url}/health`, { dispatcher: trusting() }).then((r) => r.json())) as { workers_connected: number };
    assert.equal(now.workers_connected, before.workers_connected, 'it never registered');
    await w.kill();
  });

  test('--insecure-skip-verify connects without the CA, and says so loudly', async () => {
    const w = await startWorker({ server, backend: mock.url, name: 'tls-insecure', args: ['--insecure-skip-verify'] });
    const warns = w.lines.filter((l) => l.level === 'warn' && /verification is OFF/.test(String(l.msg)));
    assert.ok(warns.length >= 2, 'warned at start and when the connection opened');
    await w.kill();
  });

  test('plain HTTP on the TLS port gets a 400 naming https://, not a hang', async () => {
    const { port } = new URL(server.url);
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { message: string; code: string } };
    assert.match(body.error.message, new RegExp(`use https://127\\.0\\.0\\.1:${port}/`));
    // A worker pointed at http:// hears the same and is told what to change.
    const w = await startWorker({ server: `http://127.0.0.1:${port}`, backend: mock.url, name: 'tls-plain', waitRegistered: false });
    await w.waitMsg('the server refused the connection; if it serves TLS, use https:// (or wss://) in --proxy-url', { status: 400 });
    await w.kill();
    // A connection that sends nothing is not held forever: the header timeout closes it.
    const idle = netConnect(Number(port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => idle.on('close', () => resolve()));
    await closed; // bounded by the server's --header-timeout (3 s here)
  });

  test('a renewed certificate is served after SIGHUP and after the file changes; a broken one is refused', async () => {
    assert.equal(await presented(), firstFingerprint);
    const second = issueCert(keyFile, certFile, 'second');
    server.signal('SIGHUP');
    await server.waitMsg('TLS certificate reloaded', { reason: 'SIGHUP', fingerprint256: second });
    assert.equal(await presented(), second);

    const third = issueCert(keyFile, certFile, 'third'); // the file changes; no signal
    await server.waitMsg('TLS certificate reloaded', { reason: 'file changed', fingerprint256: third }, 20_000);
    assert.equal(await presented(), third);

    writeFileSync(at('other.key'), readFileSync(at('ca.key'))); // a key that doesn't go with the certificate
    const broken = spawnServer(['--listen', '127.0.0.1:0', '--worker-secret', 'x'.repeat(20), '--tls-cert', certFile, '--tls-key', at('other.key')]);
    assert.equal((await broken.exited).code, 1, 'a pair that does not match stops the start');
    assert.match(broken.stderr.join('\n'), /does not go with the certificate/);

    writeFileSync(certFile, 'not a certificate\n');
    server.signal('SIGHUP');
    await server.waitMsg('TLS certificate reload failed; still serving the previous one', { reason: 'SIGHUP' });
    assert.equal(await presented(), third, 'the previous certificate is still served');
  });

  test('--tls-cert without --tls-key is a usage error', async () => {
    const p = spawnServer(['--listen', '127.0.0.1:0', '--worker-secret', 'x'.repeat(20), '--tls-cert', certFile]);
    assert.equal((await p.exited).code, 2);
    assert.match(p.stderr.join('\n'), /--tls-cert and --tls-key together/);
  });
});
