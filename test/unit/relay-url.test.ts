// --proxy-url → the WebSocket URL the worker dials: the path is kept as a prefix (a relay behind a
// reverse proxy under /relay), ws:// and wss:// are taken as they are.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workerConnectUrl } from '../../src/worker/relay-url.js';

const dial = (u: string): string => workerConnectUrl(u, 'local').href;

test('http and https become ws and wss on the worker endpoint', () => {
  assert.equal(dial('http://relay.example:8080'), 'ws://relay.example:8080/v1/worker/connect?provider=local');
  assert.equal(dial('https://relay.example'), 'wss://relay.example/v1/worker/connect?provider=local');
});

test('the path of --proxy-url is kept as a prefix, with or without a trailing slash or /v1', () => {
  for (const u of ['https://example.org/relay', 'https://example.org/relay/', 'https://example.org/relay/v1', 'https://example.org/relay/v1/']) {
    assert.equal(dial(u), 'wss://example.org/relay/v1/worker/connect?provider=local', u);
  }
});

test('ws:// and wss:// URLs work, also naming the endpoint in full, and their query is kept', () => {
  assert.equal(dial('ws://127.0.0.1:9000'), 'ws://127.0.0.1:9000/v1/worker/connect?provider=local');
  assert.equal(dial('wss://example.org/relay/v1/worker/connect'), 'wss://example.org/relay/v1/worker/connect?provider=local');
  assert.equal(dial('wss://example.org/relay/?team=a'), 'wss://example.org/relay/v1/worker/connect?team=a&provider=local');
});

test('other schemes are refused', () => {
  assert.throws(() => dial('ftp://example.org'), /http:\/\/, https:\/\/, ws:\/\/ or wss:\/\//);
  assert.throws(() => dial('relay.example:8080'));
});
