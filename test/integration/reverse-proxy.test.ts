// A relay published under a path prefix behind a real nginx (WebSocket upgrade, prefix stripped):
// workers given the public URL with its path reach /relay/v1/worker/connect, and clients the /relay/v1 API.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { killAll, startMock, startServer, startWorker, type MockProc, type ServerProc } from '../helpers/cluster.js';
import { findNginx, startNginx, type Nginx } from '../helpers/nginx.js';

const bin = findNginx();
const skip = bin ? false : 'nginx is not installed (apt-get install nginx): skipping the reverse-proxy tests';
let server: ServerProc;
let mock: MockProc;
let nginx: Nginx | undefined;

before(async () => {
  if (!bin) return;
  [server, mock] = await Promise.all([startServer(), startMock(['--tokens', '5'])]);
  const relay = new URL(server.url);
  nginx = await startNginx(
    bin,
    `  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:PORT;
    location /relay/ {
      proxy_pass http://${relay.host}/;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }`,
  );
});
after(async () => {
  await nginx?.close();
  await killAll();
});

const publicUrl = (): string => `http://127.0.0.1:${nginx!.port}`;

test('nginx answers nothing at the host root: the prefix is what routes to the relay', { skip }, async () => {
  assert.equal((await fetch(`${publicUrl()}/v1/worker/connect`)).status, 404);
  assert.equal((await fetch(`${publicUrl()}/relay/health`)).status, 200);
});

test('a worker given --proxy-url http://host/relay connects through the prefix and serves a client of /relay/v1', { skip, timeout: 20_000 }, async () => {
  await startWorker({ server: `${publicUrl()}/relay`, backend: mock.url, name: 'w-prefix', models: 'm-prefix' });
  const openai = new OpenAI({ baseURL: `${publicUrl()}/relay/v1`, apiKey: 'sk-test', maxRetries: 0 });
  let text = '';
  for await (const chunk of await openai.chat.completions.create({ model: 'm-prefix', stream: true, messages: [{ role: 'user', content: 'hi' }] })) {
    text += chunk.choices[0]?.delta.content ?? '';
  }
  assert.ok(text.length > 0, 'the stream through nginx carried content');
});

test('a full ws:// URL of the endpoint under the prefix works too', { skip, timeout: 20_000 }, async () => {
  await startWorker({ server: `ws://127.0.0.1:${nginx!.port}/relay/v1/worker/connect`, backend: mock.url, name: 'w-ws', models: 'm-ws' });
  const res = await fetch(`${publicUrl()}/relay/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm-ws', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
});
