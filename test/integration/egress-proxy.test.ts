// Workers behind an egress proxy: the WebSocket to the relay goes only through the proxy (HTTP
// CONNECT with basic auth, or SOCKS5; ws and wss, TLS verified inside the tunnel), backend calls
// follow NO_PROXY, a refusing or unreachable proxy is a clear log line and retries (never a direct
// connection), and --egress-proxy URL|none overrides the environment.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { after, afterEach, before, test } from 'node:test';
import { killAll, startMock, startServer, startWorker, until, type MockProc, type Proc, type ServerProc } from '../helpers/cluster.js';
import { startConnectProxy, startSocks5Proxy, type TestProxy } from '../helpers/proxies.js';

const USER = 'alice';
const PASSWORD = 's3cret-pw';
const dir = mkdtempSync(join(tmpdir(), 'mr-egress-'));
const certFile = join(dir, 'cert.pem');
let server: ServerProc;
let mock: MockProc;
let tls: TlsServer;
let relayPort: number;
let tlsPort: number;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  [server, mock] = await Promise.all([startServer(), startMock(['--tokens', '3'])]);
  relayPort = Number(new URL(server.url).port);
  // The relay has no TLS of its own: a TLS-terminating forwarder in front of it, with a certificate
  // made here for `localhost`, that the workers trust through NODE_EXTRA_CA_CERTS.
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  tls = createTlsServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (s) => {
    const up = connect(relayPort, '127.0.0.1');
    s.pipe(up).pipe(s);
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
  });
  tls.listen(0, '127.0.0.1');
  await once(tls, 'listening');
  tlsPort = (tls.address() as AddressInfo).port;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
after(async () => {
  await killAll();
  tls.close();
  rmSync(dir, { recursive: true, force: true });
});

async function connectProxy(): Promise<TestProxy> {
  const p = await startConnectProxy({ user: USER, password: PASSWORD });
  cleanups.push(() => p.close());
  return p;
}

/** The proxy URL with credentials in it. */
function withAuth(p: TestProxy, password = PASSWORD): string {
  const u = new URL(p.url);
  u.username = USER;
  u.password = password;
  return u.href.replace(/\/$/, '');
}

async function worker(name: string, relay: string, env: Record<string, string>, args: string[] = [], waitRegistered = true): Promise<Proc> {
  const w = await startWorker({ server: relay, backend: mock.url, name, models: `m-${name}`, env, args, waitRegistered });
  cleanups.push(() => w.kill());
  return w;
}

async function chat(model: string): Promise<number> {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [] }) });
  await res.arrayBuffer();
  return res.status;
}

function assertNoPassword(w: Proc): void {
  const all = JSON.stringify(w.lines) + w.stderr.join('\n');
  assert.ok(!all.includes(PASSWORD), 'the proxy password appears in the worker output');
}

const localhostRelay = (): string => `http://localhost:${relayPort}`;

test('ws:// through an HTTP CONNECT proxy with basic auth (HTTP_PROXY); the backend stays direct per NO_PROXY', async () => {
  const proxy = await connectProxy();
  const w = await worker('ws-proxied', localhostRelay(), { HTTP_PROXY: withAuth(proxy), NO_PROXY: '127.0.0.1,::1' });
  const egress = await w.waitMsg('egress proxies');
  assert.equal(egress['relay'], `http://${USER}:***@127.0.0.1:${proxy.port} (HTTP_PROXY)`);
  assert.equal(egress['backend'], 'direct (NO_PROXY)');
  assert.deepEqual(proxy.tunnels, [{ target: `localhost:${relayPort}`, credentials: `${USER}:${PASSWORD}` }]);
  assert.equal(await chat('m-ws-proxied'), 200);
  assert.equal(proxy.tunnels.length, 1, 'the backend call went through the proxy despite NO_PROXY');
  assert.ok((await mock.stats()).byPath['/v1/chat/completions']! >= 1);
  assertNoPassword(w);
});

test('wss:// through the proxy (HTTPS_PROXY): TLS to the relay inside the tunnel, verified', async () => {
  const proxy = await connectProxy();
  const relay = `https://localhost:${tlsPort}`;
  const w = await worker('wss-proxied', relay, { HTTPS_PROXY: withAuth(proxy), NO_PROXY: '127.0.0.1', NODE_EXTRA_CA_CERTS: certFile });
  assert.equal((await w.waitMsg('egress proxies'))['relay'], `http://${USER}:***@127.0.0.1:${proxy.port} (HTTPS_PROXY)`);
  assert.deepEqual(proxy.tunnels.map((t) => t.target), [`localhost:${tlsPort}`]);
  assert.equal(await chat('m-wss-proxied'), 200);
  // The same without trusting the certificate: the tunnel opens, the TLS check inside it fails.
  const untrusting = await worker('wss-untrusted', relay, { HTTPS_PROXY: withAuth(proxy), NO_PROXY: '127.0.0.1' }, [], false);
  const line = await untrusting.waitMsg('could not connect to the relay through the egress proxy');
  assert.match(String(line['err']), /certificate/i);
  assert.equal(server.count('worker registered', { worker: 'wss-untrusted' }), 0);
});

test('without NO_PROXY the backend calls go through the proxy too, and the worker warns', async () => {
  const proxy = await connectProxy();
  const w = await worker('backend-proxied', localhostRelay(), { http_proxy: withAuth(proxy) });
  assert.equal((await w.waitMsg('egress proxies'))['backend'], `http://${USER}:***@127.0.0.1:${proxy.port} (http_proxy)`);
  await w.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('the local backend is reached through http_proxy'), 'the loopback warning');
  assert.equal(await chat('m-backend-proxied'), 200);
  const backendPort = new URL(mock.url).port;
  assert.ok(proxy.tunnels.some((t) => t.target === `127.0.0.1:${backendPort}` && t.credentials === `${USER}:${PASSWORD}`), JSON.stringify(proxy.tunnels));
});

test('wrong credentials: a clear 407 line naming the proxy, retries with backoff, never a direct connection', async () => {
  const proxy = await connectProxy();
  const w = await worker('bad-creds', localhostRelay(), { HTTP_PROXY: withAuth(proxy, 'wrong'), NO_PROXY: '127.0.0.1' }, [], false);
  const line = await w.waitMsg('the egress proxy refused the tunnel to the relay', { status: 407 });
  assert.equal(line['proxy'], `http://${USER}:***@127.0.0.1:${proxy.port}`);
  assert.match(String(line['hint']), /user and password/);
  await until(() => w.count('the egress proxy refused the tunnel to the relay') >= 2 && proxy.refused >= 2, 'a second attempt');
  assert.ok(w.count('reconnecting') >= 1);
  assert.equal(server.count('worker registered', { worker: 'bad-creds' }), 0, 'the worker reached the relay without the proxy');
  assert.equal(proxy.tunnels.length, 0);
  assertNoPassword(w);
});

test('no credentials is a 407 line too, and a proxy that forbids the destination a 403 line', async () => {
  const proxy = await connectProxy();
  const anon = await worker('no-creds', localhostRelay(), { HTTP_PROXY: proxy.url }, [], false);
  await anon.waitMsg('the egress proxy refused the tunnel to the relay', { status: 407 });
  const strict = await startConnectProxy({ forbid: true });
  cleanups.push(() => strict.close());
  const w = await worker('forbidden', localhostRelay(), { HTTP_PROXY: strict.url }, [], false);
  const line = await w.waitMsg('the egress proxy refused the tunnel to the relay', { status: 403 });
  assert.equal(line['proxy'], strict.url);
  assert.equal(server.count('worker registered', { worker: 'forbidden' }) + server.count('worker registered', { worker: 'no-creds' }), 0);
});

test('an unreachable proxy: a clear line naming it, and retries', async () => {
  const closed = createNetServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  const w = await worker('no-proxy-there', localhostRelay(), { HTTP_PROXY: `http://127.0.0.1:${port}` }, [], false);
  const line = await w.waitMsg('the egress proxy is unreachable');
  assert.equal(line['proxy'], `http://127.0.0.1:${port}`);
  assert.match(String(line['err']), /ECONNREFUSED/);
  await until(() => w.count('the egress proxy is unreachable') >= 2, 'a second attempt');
  assert.equal(server.count('worker registered', { worker: 'no-proxy-there' }), 0);
});

test('--egress-proxy none goes direct despite HTTP_PROXY; --egress-proxy URL overrides the environment', async () => {
  const proxy = await connectProxy();
  const direct = await worker('direct', localhostRelay(), { HTTP_PROXY: withAuth(proxy), NO_PROXY: '127.0.0.1' }, ['--egress-proxy', 'none']);
  assert.equal((await direct.waitMsg('egress proxies'))['relay'], 'direct (--egress-proxy none)');
  assert.equal(proxy.tunnels.length, 0, 'the worker used the proxy it was told not to');
  // HTTP_PROXY names a port nothing listens on: only the flag's proxy gets this worker through.
  await worker('chosen-flag', localhostRelay(), { HTTP_PROXY: 'http://127.0.0.1:1', NO_PROXY: '127.0.0.1', EGRESS_PROXY: withAuth(proxy) });
  assert.deepEqual(proxy.tunnels.map((t) => t.target), [`localhost:${relayPort}`]);
});

test('socks5:// and socks5h:// proxies with user and password (ws and wss); a wrong password retries', async () => {
  const socks = await startSocks5Proxy({ user: USER, password: PASSWORD });
  cleanups.push(() => socks.close());
  const auth = `${USER}:${PASSWORD}@127.0.0.1:${socks.port}`;
  // socks5h: the proxy resolves the name; socks5: the worker does, and sends an address.
  await worker('socks-ws', localhostRelay(), { NO_PROXY: '127.0.0.1' }, ['--egress-proxy', `socks5h://${auth}`]);
  await worker('socks-wss', `https://localhost:${tlsPort}`, { NODE_EXTRA_CA_CERTS: certFile }, ['--egress-proxy', `socks5://${auth}`]);
  assert.equal(socks.tunnels.length, 2);
  assert.deepEqual(socks.tunnels[0], { target: `localhost:${relayPort}`, credentials: `${USER}:${PASSWORD}` });
  assert.ok(socks.tunnels[1]!.target.endsWith(`:${tlsPort}`) && !socks.tunnels[1]!.target.startsWith('localhost'), socks.tunnels[1]!.target);
  assert.equal(socks.tunnels[1]!.credentials, `${USER}:${PASSWORD}`);
  assert.equal(await chat('m-socks-wss'), 200);
  const bad = await worker('socks-bad', localhostRelay(), {}, ['--egress-proxy', `socks5://${USER}:nope@127.0.0.1:${socks.port}`], false);
  const line = await bad.waitMsg('the egress proxy refused the tunnel to the relay');
  assert.equal(line['proxy'], `socks5://${USER}:***@127.0.0.1:${socks.port}`);
  assert.match(String(line['err']), /authentication failed/i);
  await until(() => socks.refused >= 2, 'a second attempt');
  assert.equal(server.count('worker registered', { worker: 'socks-bad' }), 0);
});
