// The dashboard in a real headless Chromium (Debian's, driven by playwright-core): sign in, see a
// worker appear, the queue counter move, drain a worker, and create and revoke a key from the page.
// A screenshot is written to .cache/dashboard.png for a person to look at.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { ADMIN_TOKEN, dataDir } from '../helpers/admin.js';
import { killAll, startMock, startServer, startWorker, until } from '../helpers/cluster.js';
import { StreamReader, chatBody, post } from './faults-util.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SHOT = new URL('../../.cache/dashboard.png', import.meta.url);

let browser: Browser | undefined;
before(async () => {
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
});
after(async () => {
  await browser?.close();
  await killAll();
});

test('dashboard: sign in, live workers and queue, drain from the page, create and revoke a key', { timeout: 90_000 }, async (t) => {
  if (!browser) return t.skip(`no Chromium at ${CHROMIUM} (apt install chromium; .ci/run installs it)`);
  const server = await startServer(['--admin-token', ADMIN_TOKEN, '--data-dir', dataDir(), '--require-api-keys']);
  const [mockA, mockB] = await Promise.all([startMock(['--name', 'A', '--tokens', '24']), startMock(['--name', 'B'])]);
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on('dialog', (d) => void d.accept());
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text()); // CSP violations land here
  });

  await page.goto(`${server.url}/dashboard`);
  await page.fill('#token', 'not-the-token');
  await page.press('#token', 'Enter');
  await page.waitForFunction(() => document.getElementById('signin-error')!.textContent !== '');
  assert.ok(await page.isHidden('#app'), 'a wrong token does not sign in');
  await page.fill('#token', ADMIN_TOKEN);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#app', { state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('modelrelay.adminToken')), ADMIN_TOKEN);
  assert.ok(!page.url().includes(ADMIN_TOKEN), 'the token never goes into the URL');
  assert.deepEqual(await page.context().cookies(), [], 'nor into a cookie');

  // A worker that connects appears within 3 s.
  await startWorker({ server, backend: mockA.url, name: 'gpu-a', maxConcurrency: 1 });
  await page.waitForSelector('tr[data-worker="gpu-a"]', { timeout: 3000 });

  // A key created on the page works; the queue counter moves when requests wait.
  await page.fill('#key-name', 'from-the-page');
  await page.click('#create-key button');
  await page.waitForSelector('#key-secret', { state: 'visible' });
  const secret = (await page.textContent('#new-key-secret'))!;
  assert.match(secret, /^mr-/);
  const auth = { authorization: `Bearer ${secret}` };
  const abort = new AbortController();
  const running = new StreamReader(await post(server, '/v1/chat/completions', chatBody({ stream: true }), { ...auth, 'x-mock-tokens': '400', 'x-mock-delay-ms': '20' }, abort.signal));
  await running.until((text) => text.includes('data: {'));
  const waiting = [1, 2].map(() => post(server, '/v1/chat/completions', chatBody(), { ...auth, 'x-mock-first-delay-ms': '400' }));
  await page.waitForFunction(() => document.getElementById('queue-total')!.textContent === '2');
  await page.waitForSelector('tr[data-worker="gpu-a"] .bar.full');
  abort.abort();
  for (const r of waiting) assert.equal((await r).status, 200);
  await page.waitForFunction(() => document.getElementById('queue-total')!.textContent === '0');
  for (let i = 0; i < 3; i++) assert.equal((await post(server, '/v1/chat/completions', chatBody(), { ...auth, 'x-mock-status': i === 2 ? '500' : '200' })).status, i === 2 ? 500 : 200);
  await page.fill('#token-name', 'gpu-box-7');
  await page.click('#create-token button');
  await page.waitForSelector('#tokens tr[data-name="gpu-box-7"]');
  await startWorker({ server, backend: mockB.url, name: 'gpu-b', models: 'mock-model,llama3.2:3b' });
  await page.waitForSelector('tr[data-worker="gpu-b"]');
  await page.waitForSelector('#errors tbody tr');
  await page.waitForFunction(() => document.querySelector('#keys tr[data-name="from-the-page"] td.num')?.textContent !== '0');
  mkdirSync(new URL('.', SHOT), { recursive: true });
  await page.screenshot({ path: SHOT.pathname, fullPage: true });

  // Revoked on the page: the key stops working.
  await page.click('#keys tr[data-name="from-the-page"] button.revoke');
  await page.waitForSelector('#keys tr[data-name="from-the-page"]', { state: 'detached' });
  assert.equal((await post(server, '/v1/chat/completions', chatBody(), auth)).status, 401);

  // Drained from the page: that session drains and leaves (the worker daemon reconnects afresh later).
  const drainedId = (await page.getAttribute('tr[data-worker="gpu-a"]', 'data-worker-id'))!;
  await page.click('tr[data-worker="gpu-a"] button.drain');
  await until(() => server.lines.some((l) => l.msg === 'worker disconnected' && l['worker_id'] === drainedId), 'gpu-a to drain and leave');
  await page.waitForSelector(`tr[data-worker-id="${drainedId}"]`, { state: 'detached' });
  assert.deepEqual(pageErrors, [], 'no script errors or CSP violations on the page');
});
