// Choosing the egress proxy: the *_PROXY / NO_PROXY conventions, the --egress-proxy override, and
// passwords kept out of what is logged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseEgress, describe, matchesNoProxy, parseProxyUrl, redact } from '../../src/worker/egress-proxy.js';

const relay = (u: string): URL => new URL(u);
const choose = (relayUrl: string, env: NodeJS.ProcessEnv, override?: string, backend = 'http://127.0.0.1:8000') =>
  chooseEgress(relay(relayUrl), new URL(backend), override, env);

test('HTTPS_PROXY for wss, HTTP_PROXY for ws, ALL_PROXY as the fallback; lower case wins', () => {
  const env = { HTTPS_PROXY: 'http://s:1', HTTP_PROXY: 'http://p:2', ALL_PROXY: 'socks5://a:3' };
  assert.equal(choose('wss://relay.example/v1/worker/connect', env).relay.proxy?.host, 's:1');
  assert.equal(choose('ws://relay.example/v1/worker/connect', env).relay.proxy?.host, 'p:2');
  assert.equal(choose('wss://relay.example/x', { ALL_PROXY: 'socks5://a:3' }).relay.proxy?.href, 'socks5://a:3');
  const both = choose('wss://relay.example/x', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:1' }).relay;
  assert.equal(both.proxy?.hostname, 'lower');
  assert.equal(both.reason, 'https_proxy');
  assert.equal(choose('wss://relay.example/x', {}).relay.proxy, undefined);
});

test('a bare host:port proxy means http://; other schemes are refused with the source named', () => {
  assert.equal(parseProxyUrl('proxy.corp:3128', 'HTTP_PROXY').href, 'http://proxy.corp:3128/');
  assert.throws(() => parseProxyUrl('ftp://x:1', 'HTTPS_PROXY'), /HTTPS_PROXY must be an http:\/\/, https:\/\/, socks5:\/\/ or socks5h:\/\//);
  assert.throws(() => choose('ws://r/x', {}, 'gopher://u:secret@x'), (e: Error) => !e.message.includes('secret') && /--egress-proxy/.test(e.message));
});

test('--egress-proxy overrides the environment for the relay only; none means direct', () => {
  const env = { HTTP_PROXY: 'http://env:1', NO_PROXY: 'relay.example' };
  const flagged = choose('ws://relay.example/x', env, 'http://flag:2');
  assert.equal(flagged.relay.proxy?.host, 'flag:2');
  assert.equal(flagged.backend.proxy?.host, 'env:1', 'the backend still follows the environment');
  const none = choose('ws://other.example/x', env, 'none');
  assert.equal(none.relay.proxy, undefined);
  assert.equal(describe(none.relay), 'direct (--egress-proxy none)');
});

test('NO_PROXY: names, domains with and without a leading dot, *, ports, IPs and CIDRs', () => {
  const m = (url: string, list: string): boolean => matchesNoProxy(new URL(url), list);
  assert.equal(m('http://localhost:8000', 'localhost'), true);
  assert.equal(m('https://a.example.org', '.example.org'), true);
  assert.equal(m('https://example.org', '.example.org'), true);
  assert.equal(m('https://a.b.example.org', 'example.org'), true);
  assert.equal(m('https://badexample.org', 'example.org'), false);
  assert.equal(m('https://a.example.org', '*.example.org'), true);
  assert.equal(m('https://anything', 'x, *'), true);
  assert.equal(m('http://host:8000', 'host:8000'), true);
  assert.equal(m('http://host:9000', 'host:8000'), false);
  assert.equal(m('wss://relay', 'relay:443'), true, 'the default port of the scheme counts');
  assert.equal(m('http://10.1.2.3:8000', '10.0.0.0/8'), true);
  assert.equal(m('http://11.1.2.3:8000', '10.0.0.0/8'), false);
  assert.equal(m('http://127.0.0.1:8000', '127.0.0.1'), true);
  assert.equal(m('http://[::1]:8000', '::1'), true);
  assert.equal(m('http://[fd00::5]:8000', 'fd00::/8'), true);
  assert.equal(m('http://[::1]:8000', '[::1]:8000'), true);
  assert.equal(m('http://127.0.0.1:8000', 'localhost'), false, 'names are not resolved');
  assert.equal(m('http://Example.ORG.', 'example.org'), true);
  assert.equal(m('http://host', ' , '), false);
});

test('NO_PROXY keeps a local backend direct while the relay uses the proxy', () => {
  const r = choose('wss://relay.example/x', { https_proxy: 'http://p:1', http_proxy: 'http://p:1', no_proxy: '127.0.0.1,localhost' });
  assert.equal(r.relay.proxy?.host, 'p:1');
  assert.equal(r.backend.proxy, undefined);
  assert.equal(r.backend.reason, 'NO_PROXY');
});

test('redact hides the password, keeps the user', () => {
  assert.equal(redact(new URL('http://alice:s3cret@proxy:3128')), 'http://alice:***@proxy:3128');
  assert.equal(redact(new URL('socks5://bob@proxy:1080')), 'socks5://bob@proxy:1080');
  assert.equal(redact(new URL('http://proxy:3128')), 'http://proxy:3128');
});
