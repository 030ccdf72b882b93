// The README's copy-paste commands, run as written. Every shell line in the sections a user copies
// from (Install, Run, Run in production) is either run here, with only the example hosts, ports and
// folders swapped for this test's, or named in ELSEWHERE with the test that covers it instead or why
// it cannot run on this machine. A command added to those sections that is in neither fails the
// first test, so none can go stale.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Proc, killAll, startMock, type MockProc, freePort } from '../helpers/cluster.js';
import { BIN_DIR, ensureStandalone } from '../helpers/standalone.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** The sections a user copies from; each is read to its next heading, of any level. */
const SECTIONS = [
  '### A standalone executable (no Node on the machine)',
  '### A container',
  '### With npm, from a clone',
  '### From source, to work on it',
  '## Run',
  '### systemd',
  '### Data directory, upgrades and backups',
  '### Connecting tools',
];

/** Lines covered by another test, or that need what this machine lacks (root, systemd, a registry). */
const ELSEWHERE: Record<string, string> = {
  'npm ci && npm run package': 'test/helpers/standalone.ts runs npm run package (scripts/package.mjs) for the shipping tests; .ci/run runs npm ci',
  'npm ci && npm run package && docker build -t modelrelay .': 'container.test.ts builds the image from this Dockerfile (podman; no registry here)',
  'docker run -d --name relay -p 8080:8080 -e WORKER_SECRET=$(openssl rand -hex 32) -v modelrelay-data:/data modelrelay':
    'container.test.ts runs the image as the relay with WORKER_SECRET and a /data volume',
  'docker run -d --name worker -e PROXY_URL=http://relay.example:8080 -e WORKER_SECRET=… -e BACKEND_URL=http://host.docker.internal:8000 modelrelay modelrelay-worker':
    'container.test.ts runs modelrelay-worker from the image with PROXY_URL, WORKER_SECRET and BACKEND_URL',
  'sudo cp -r dist/bin /opt/modelrelay # npm run package first': 'the same copy is run from the standalone block above',
  'sudo install -d -m 750 /etc/modelrelay': 'needs root and systemd as PID 1; systemd.test.ts verifies the units and env files',
  'openssl rand -hex 32 | sudo tee /etc/modelrelay/worker-secret >/dev/null && sudo chmod 600 /etc/modelrelay/worker-secret': 'needs root; the same secret file is made in the Run block',
  'sudo install -m 644 extras/systemd/modelrelay-server.service /etc/systemd/system/': 'needs root and systemd; systemd.test.ts verifies this unit',
  'sudo install -m 640 extras/systemd/server.env /etc/modelrelay/server.env': 'needs root; systemd.test.ts checks the env file names only variables the server reads',
  'sudo systemctl daemon-reload && sudo systemctl enable --now modelrelay-server': 'needs systemd as PID 1 (none in CI containers)',
  'sudo install -m 644 extras/systemd/modelrelay-worker@.service /etc/systemd/system/': 'needs root and systemd; systemd.test.ts verifies this template unit',
  'sudo install -m 640 extras/systemd/worker.env /etc/modelrelay/worker-gpu0.env # edit PROXY_URL, BACKEND_URL': 'needs root; systemd.test.ts checks the env file',
  'sudo systemctl daemon-reload && sudo systemctl enable --now modelrelay-worker@gpu0': 'needs systemd as PID 1',
  'docker run -d -p 3000:8080 -e OPENAI_API_BASE_URL=http://relay.example:8080/v1 -e OPENAI_API_KEY=$KEY ghcr.io/open-webui/open-webui:main':
    "Open WebUI's image is not reachable here; it speaks plain OpenAI chat completions, which the openai line runs",
};

/** The shell lines of every ```sh block under `heading`, to the next heading: continuation lines
 * joined, whole-line comments dropped, trailing ones kept. */
function shellLines(heading: string): string[] {
  const all = README.split('\n');
  const start = all.indexOf(heading);
  assert.ok(start >= 0, `the README has a "${heading}" section`);
  const lines: string[] = [];
  let fence: string | undefined; // the open block's language
  let joined = '';
  for (const raw of all.slice(start + 1)) {
    if (fence === undefined && /^#{1,6} /.test(raw)) break;
    if (raw.startsWith('```')) {
      fence = fence === undefined ? raw.slice(3) : undefined;
      continue;
    }
    if (fence !== 'sh') continue;
    joined += raw.trim();
    if (joined.endsWith('\\')) {
      joined = joined.slice(0, -1);
      continue;
    }
    const l = joined.replace(/\s+/g, ' ').trim();
    joined = '';
    if (l && !l.startsWith('#')) lines.push(l);
  }
  return lines;
}


const built = ensureStandalone();
const skip = built.ok ? false : built.skip;
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'mr-readme-'));
  dirs.push(d);
  return d;
};
after(async () => {
  await killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Each line the tests below ran, as the README has it. */
const ran = new Set<string>();

test('every command in the Install, Run and Run in production sections is run here or covered elsewhere', { skip }, () => {
  const all = SECTIONS.flatMap(shellLines);
  assert.ok(all.length > 10, 'found the README blocks');
  const known = new Set([...ALL_RUN, ...Object.keys(ELSEWHERE)]);
  assert.deepEqual(all.filter((l) => !known.has(l)), [], 'README commands neither run by this test nor listed in ELSEWHERE');
  assert.deepEqual(Object.keys(ELSEWHERE).filter((l) => !all.includes(l)), [], 'ELSEWHERE names lines the README no longer has');
});

// The lines the tests below run: the first test checks that they are exactly the README's.
const RUN_BLOCK = shellLines('## Run').slice(0, 3);
const TOOLS = shellLines('### Connecting tools');
const INSTALL = shellLines('### A standalone executable (no Node on the machine)').slice(1).concat(shellLines('### With npm, from a clone'));
const ALL_RUN = [...RUN_BLOCK, ...TOOLS, ...INSTALL].filter((l) => !(l in ELSEWHERE));

describe('the README, as written', { skip }, () => {
  let port: number;
  let mock: MockProc;
  let dir: string;
  let server: Proc;
  let worker: Proc;
  /** PATH with the standalone commands first, as after that install. */
  let path: string;
  /** Where `npm install -g` put its commands. */
  let npmBin: string;
  const swap = (l: string): string =>
    l
      .replaceAll('0.0.0.0:8080', `127.0.0.1:${port}`)
      .replaceAll('relay.example:8080', `127.0.0.1:${port}`)
      .replaceAll('http://127.0.0.1:8000', mock.url);

  /** Runs a README line (plus `extra` arguments the test needs, such as curl's status output). */
  const sh = (line: string, env: Record<string, string> = {}, extra = ''): { status: number | null; out: string } => {
    ran.add(line);
    const r = spawnSync('bash', ['-c', swap(line) + extra], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: path, ...env }, timeout: 60_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const daemon = (name: string, line: string, bin = path): Proc => {
    ran.add(line);
    return new Proc(name, spawn('bash', ['-c', `exec ${swap(line)}`], { cwd: dir, env: { ...process.env, PATH: bin }, stdio: ['ignore', 'pipe', 'pipe'] }));
  };

  before(async () => {
    port = await freePort();
    mock = await startMock(['--name', 'readme']);
    dir = tmp();
    path = `${BIN_DIR}:${process.env['PATH']}`;
  });

  test('Install: the standalone copy and its --version; npm install -g from the clone and --help', () => {
    const opt = tmp();
    const [copy, fromClone, help] = INSTALL as [string, string, string];
    ran.add(copy);
    const c = spawnSync('bash', ['-c', copy.replace(/^sudo /, '').replaceAll('/opt/modelrelay', join(opt, 'modelrelay'))], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /\d+\.\d+\.\d+/);
    // `npm ci && npm run build` already ran (the suite's build); the global install goes to a prefix.
    assert.match(fromClone, /npm install -g \.$/);
    ran.add(fromClone);
    const prefix = tmp();
    npmBin = join(prefix, 'bin');
    const g = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '.'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(g.status, 0, g.stderr);
    ran.add(help);
    const h = spawnSync('bash', ['-c', help], { encoding: 'utf8', env: { ...process.env, PATH: `${npmBin}:${process.env['PATH']}` } });
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /Usage: modelrelay-server/);
  });

  // Two install paths serve every request below: the relay is the standalone binary, the worker the
  // command npm installed.
  test('Run: the secret file, the relay (standalone binary) and a worker (npm install -g), each line as the README has it', async () => {
    const [secret, relay, gpu] = RUN_BLOCK as [string, string, string];
    assert.match(secret, /^openssl rand/);
    assert.equal(sh(secret).status, 0);
    server = daemon('server', relay);
    await server.waitMsg('listening');
    assert.ok(npmBin, 'the npm install ran first');
    worker = daemon('worker', gpu, `${npmBin}:${process.env['PATH']}`);
    await worker.waitMsg('registered');
  });

  test('Connecting tools: curl, the openai and anthropic SDKs from their environment variables, and the Claude Code variables', async () => {
    const KEY = 'sk-readme-test';
    const curl = TOOLS.find((l) => l.startsWith('curl '))!;
    const r = sh(curl, { KEY }, ` -sS -w '\\n%{http_code}'`);
    const [body, status] = [r.out.slice(0, r.out.lastIndexOf('\n')), r.out.slice(r.out.lastIndexOf('\n') + 1)];
    assert.equal(status, '200', r.out);
    const model = /"model":"([^"]+)"/.exec(curl)![1]!;
    assert.equal((JSON.parse(body) as { model: string }).model, model);

    // The export lines, then each SDK with no options: it must find the relay from them alone.
    const envOf = (line: string): Record<string, string> =>
      Object.fromEntries([...swap(line).replace(/^export /, '').matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!.replace('$KEY', KEY)]));
    const node = (script: string, env: Record<string, string>): string => {
      const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 });
      assert.equal(out.status, 0, out.stderr);
      return out.stdout.trim();
    };
    const openaiLine = TOOLS.find((l) => l.startsWith('export OPENAI_BASE_URL'))!;
    ran.add(openaiLine);
    assert.match(
      node(`import OpenAI from 'openai'; const c = await new OpenAI().chat.completions.create({ model: ${JSON.stringify(model)}, messages: [{ role: 'user', content: 'Hi' }] }); console.log(c.choices[0].message.content);`, envOf(openaiLine)),
      /\[readme\]/,
    );
    const anthropicLine = TOOLS.find((l) => l.startsWith('export ANTHROPIC_BASE_URL'))!;
    ran.add(anthropicLine);
    const claude = `import Anthropic from '@anthropic-ai/sdk'; const m = await new Anthropic().messages.create({ model: process.env.ANTHROPIC_MODEL ?? ${JSON.stringify(model)}, max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }); console.log(m.content[0].text);`;
    assert.match(node(claude, envOf(anthropicLine)), /\[readme\]/);
    // Claude Code's line: its variables (ANTHROPIC_AUTH_TOKEN, ANTHROPIC_MODEL) drive the same SDK.
    const claudeLine = TOOLS.find((l) => l.startsWith('ANTHROPIC_BASE_URL='))!;
    ran.add(claudeLine);
    assert.match(claudeLine, / claude$/);
    assert.match(node(claude, envOf(claudeLine.replace(/ claude$/, ''))), /\[readme\]/);
  });

  test('every line those tests meant to run was run', () => {
    assert.deepEqual(ALL_RUN.filter((l) => !ran.has(l)), []);
  });
});
