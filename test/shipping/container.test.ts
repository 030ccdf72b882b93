// The container image, built from the root Dockerfile with podman and run for real: the simulated
// backend, the server and a worker as three containers of the one image, a streamed request through
// them, the image's HEALTHCHECK, its non-root user, and client keys kept in its /data volume across
// a restart; then docker-compose.yml brought up with podman-compose (its own network, service names)
// and the curl from its header run against it. The base image is made here
// (test/helpers/podman.ts); both images are cached by inputs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN } from '../helpers/admin.js';
import { SECRET, until, freePort } from '../helpers/cluster.js';
import { CONTAINERS_CONF, baseImage, mustPodman, podman, podmanProblem, projectImage } from '../helpers/podman.js';
import { ensureStandalone } from '../helpers/standalone.js';
import { chatBody, chatStreamContent, post } from '../integration/faults-util.js';

const built = ensureStandalone();
const problem = built.ok ? podmanProblem() : built.skip.replace(/^skipped: /, '');
const skip = problem ? `skipped: ${problem}` : false;
if (skip) console.log(`# container image ${skip}`);

const tag = `mr-test-${process.pid}`;
const containers: string[] = [];
const volume = `${tag}-data`;
let image: string;


/** Starts a container of the image on the host's network; returns its name. */
function run(name: string, env: Record<string, string>, command: string[] = [], extra: string[] = []): string {
  const full = `${tag}-${name}`;
  containers.push(full);
  mustPodman(['run', '-d', '--network=host', '--name', full, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), ...extra, image, ...command]);
  return full;
}

const logs = (name: string): string => podman(['logs', name]).stdout + podman(['logs', name]).stderr;

async function healthy(url: string, what: string, pred: (h: { workers_connected: number }) => boolean = () => true): Promise<void> {
  await until(async () => {
    try {
      const res = await fetch(`${url}/health`);
      return res.ok && pred((await res.json()) as { workers_connected: number });
    } catch {
      return false;
    }
  }, what, 30_000);
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const compose = spawnSync('podman-compose', ['version'], { encoding: 'utf8' }).status === 0;
const project = `mrcompose${process.pid}`;
let composeEnv: NodeJS.ProcessEnv = {};

function podmanCompose(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('podman-compose', ['-p', project, ...args], { cwd: ROOT, env: composeEnv, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => !/systemd connection/.test(l)).slice(-20).join('\n') };
}

before(() => {
  if (skip) return;
  image = projectImage(baseImage());
});
after(() => {
  if (skip) return;
  for (const c of containers) podman(['rm', '-f', '-v', '-t', '0', c]); // -v: the anonymous /data volumes too
  podman(['volume', 'rm', '-f', volume]);
  if (compose && composeEnv['MODELRELAY_IMAGE']) {
    // podman-compose's down leaves the containers' anonymous /data volumes: remove those first.
    const ids = podman(['ps', '-a', '-q', '--filter', `label=io.podman.compose.project=${project}`]).stdout.split('\n').filter(Boolean);
    if (ids.length) podman(['rm', '-f', '-v', '-t', '0', ...ids]);
    podmanCompose(['down', '-v']);
    podman(['network', 'rm', '-f', `${project}_default`]);
  }
});

describe('container image', { skip }, () => {
  test('one image: non-root, LISTEN_ADDR 0.0.0.0:8080, a HEALTHCHECK, a /data volume, the server by default', () => {
    const [info] = JSON.parse(mustPodman(['image', 'inspect', image])) as any[];
    assert.equal(info.Config.User, '10001:10001');
    assert.ok((info.Config.Env as string[]).includes('LISTEN_ADDR=0.0.0.0:8080'));
    assert.ok((info.Config.Env as string[]).includes('DATA_DIR=/data'));
    assert.deepEqual(Object.keys(info.Config.Volumes ?? {}), ['/data']);
    assert.deepEqual(info.Config.Cmd, ['modelrelay-server']);
    assert.deepEqual(info.Healthcheck?.Test ?? info.Config.Healthcheck?.Test, ['CMD', 'modelrelay', 'healthcheck']);
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    assert.match(dockerfile, /^ARG RUNTIME_IMAGE=/m);
    assert.match(dockerfile, /^FROM \$\{RUNTIME_IMAGE\}$/m);
  });

  test('backend, server and worker as containers: a streamed request, the health check, keys kept in the volume', { timeout: 120_000 }, async () => {
    const [serverPort, mockPort] = await Promise.all([freePort(), freePort()]);
    const url = `http://127.0.0.1:${serverPort}`;
    run('mock', {}, ['modelrelay-mock-backend', '--listen', `127.0.0.1:${mockPort}`, '--tokens', '5']);
    const serverEnv = { LISTEN_ADDR: `127.0.0.1:${serverPort}`, WORKER_SECRET: SECRET, ADMIN_TOKEN, REQUIRE_API_KEYS: 'true' };
    const server = run('server', serverEnv, [], ['-v', `${volume}:/data`]);
    await healthy(url, `the server container answering /health\n${logs(server)}`);
    const worker = run('worker', { WORKER_SECRET: SECRET }, ['modelrelay-worker', '--proxy-url', url, '--backend-url', `http://127.0.0.1:${mockPort}`, '--models', 'mock-model', '--worker-name', 'in-a-container']);
    await healthy(url, `the worker container registered\n${logs(worker)}`, (h) => h.workers_connected === 1);

    const check = podman(['healthcheck', 'run', server]);
    assert.equal(check.status, 0, `HEALTHCHECK: ${check.stdout} ${check.stderr}`);
    const pid = mustPodman(['inspect', '--format', '{{.State.Pid}}', server]);
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+10001\s/m, 'the server runs as the image user, not root');

    const key = await fetch(`${url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'container' }) });
    assert.equal(key.status, 201);
    const secret = ((await key.json()) as { secret: string }).secret;
    const res = await post(url, '/v1/chat/completions', chatBody({ stream: true }), { authorization: `Bearer ${secret}` });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(text.trimEnd().endsWith('data: [DONE]'));
    assert.ok(chatStreamContent(text).length > 0);

    // A new server container on the same volume still knows the key.
    mustPodman(['stop', '-t', '10', server]);
    mustPodman(['rm', '-v', server]);
    run('server', serverEnv, [], ['-v', `${volume}:/data`]);
    await healthy(url, 'the second server container');
    assert.equal((await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).status, 200, 'the key survived in /data');
  });

  test('docker compose up: a server, a worker and the simulated backend on their own network; the curl of its header works', { skip: compose ? false : 'skipped: podman-compose is not installed (apt-get install podman-compose golang-github-containernetworking-plugin-dnsname)', timeout: 120_000 }, async () => {
    const port = await freePort();
    composeEnv = { ...process.env, CONTAINERS_CONF, MODELRELAY_IMAGE: image, MODELRELAY_PORT: String(port), WORKER_SECRET: SECRET };
    const up = podmanCompose(['up', '-d']);
    assert.equal(up.status, 0, up.out);
    const url = `http://127.0.0.1:${port}`;
    await healthy(url, `the compose worker registered\n${logs(`${project}_worker_1`)}`, (h) => h.workers_connected === 1);
    // The curl the file's header shows, as written there (on the port chosen here).
    const header = readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8');
    const curl = /^#\s+(curl [^\n]*\\\n#\s+[^\n]*)$/m.exec(header)?.[1]?.replace(/\\\n#\s+/, '').replace('127.0.0.1:8080', `127.0.0.1:${port}`);
    assert.ok(curl, 'docker-compose.yml shows a curl');
    const r = spawnSync('sh', ['-c', `${curl} --silent --show-error --max-time 30`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes('data: [DONE]'), r.stdout.slice(0, 500));
    assert.ok(chatStreamContent(r.stdout).length > 0);
  });
});
