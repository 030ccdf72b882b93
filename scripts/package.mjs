#!/usr/bin/env node
// npm run package: standalone executables for this platform in dist/bin/, which run with no Node and
// no node_modules on the machine: `modelrelay`, a Node single-executable application holding every
// command (src/cli/standalone.ts: bundled by esbuild into one CommonJS file, made into a SEA blob by
// a current LTS Node, the registry's node-<os>-<arch> package, so nothing is downloaded from anywhere
// but npm, and injected with postject into a copy of that Node), and modelrelay-server,
// modelrelay-worker and modelrelay-mock-backend, links to it that choose the command by their name.
// better-sqlite3's native addon, compiled for that Node, sits beside it (src/store/native-addon.ts).
//
// Everything slow is cached in .cache/ by its inputs: the Node package by version, the addon by
// better-sqlite3's and Node's versions, the executable by a hash of the sources, the lockfile and
// this script; a warm run only copies them into dist/bin/. Cold, it takes about a minute.
//
// `--runtime` builds nothing: it only makes sure of that Node and its addon and prints their paths
// as JSON, for running the test suite on Node 24 (scripts/test-node24.mjs).
//
// Exit codes: 0 built (or up to date), 1 failed, 3 a prerequisite could not be had (no Node 24 from
// the registry, no compiler): the tests skip on 3.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node the executables are built on; a change rebuilds everything. */
const SEA_NODE_VERSION = '24.22.3';
const BINARY = 'modelrelay';
const LINKS = ['modelrelay-server', 'modelrelay-worker', 'modelrelay-mock-backend'];
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const ADDON_FILE = 'better_sqlite3.node';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(ROOT, '.cache');
const OUT = join(ROOT, 'dist', 'bin');
const require = createRequire(import.meta.url);

class Unavailable extends Error {}

const log = (msg) => process.stderr.write(`package: ${msg}\n`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    const err = new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})\n${out}`);
    err.output = out;
    throw err;
  }
  return r.stdout;
}

/** Holds .cache/package.lock while building, so two tests asking at once build once. */
async function withLock(fn) {
  const lock = join(CACHE, 'package.lock');
  mkdirSync(CACHE, { recursive: true });
  const end = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {}
      if (Number.isInteger(holder) && !alive(holder)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > end) throw new Error(`${lock} is held by process ${holder}; remove it if that process is gone`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** The registry's Node for this platform, installed once into .cache/node/. */
function seaNode() {
  const os = process.platform === 'win32' ? 'win' : process.platform;
  const pkg = `node-${os}-${process.arch}`;
  const dir = join(CACHE, 'node', `${pkg}-${SEA_NODE_VERSION}`);
  const home = join(dir, 'node_modules', pkg);
  const bin = join(home, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (!existsSync(bin)) {
    log(`installing ${pkg}@${SEA_NODE_VERSION} from the npm registry into ${relative(ROOT, dir)}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
    try {
      run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', dir, `${pkg}@${SEA_NODE_VERSION}`], { timeout: 10 * 60_000 });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw new Unavailable(`cannot install ${pkg}@${SEA_NODE_VERSION} from the npm registry: ${e.output?.split('\n').at(-1) ?? e.message}`);
    }
    if (!existsSync(bin)) throw new Unavailable(`${pkg}@${SEA_NODE_VERSION} has no ${relative(home, bin)}`);
  }
  return { bin, home, version: SEA_NODE_VERSION };
}

/**
 * better-sqlite3 compiled for the SEA's Node (its ABI differs from the Node running npm ci). The
 * slow part, SQLite itself, doesn't depend on Node: npm ci already compiled it, so only the binding
 * is compiled again, against the SEA Node's headers (seconds, not minutes), linked with that SQLite.
 * Where npm ci's build tree isn't there (a prebuilt download), everything is compiled.
 */
function sqliteAddon(node) {
  const src = dirname(require.resolve('better-sqlite3/package.json'));
  const version = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')).version;
  const dir = join(CACHE, 'sqlite-addon', `better-sqlite3-${version}-node-${node.version}-${process.platform}-${process.arch}`);
  const addon = join(dir, ADDON_FILE);
  if (existsSync(addon)) return addon;
  const gyp = process.env['npm_config_node_gyp'] ?? join(run('npm', ['root', '-g']).trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(gyp)) throw new Unavailable(`cannot find node-gyp (looked at ${gyp}) to build better-sqlite3 for Node ${node.version}`);
  const work = join(dir, 'build-tree');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const gypArgs = ['--release', `--nodedir=${node.home}`, '--jobs=max'];
  // Under `npm run`, npm's own config reaches node-gyp as npm_config_* and beats its --nodedir flag:
  // Debian's npm sets nodedir=/usr, which would build against the system Node's headers (ABI 115).
  const gypEnv = { ...process.env, npm_config_nodedir: node.home };
  const sqlite = ['Release/sqlite3.a', 'Release/obj.target/deps/sqlite3.a', 'Release/obj.target/sqlite3/gen/sqlite3/sqlite3.o', 'Release/obj.target/deps/locate_sqlite3.stamp'];
  let built = false;
  if (sqlite.every((f) => existsSync(join(src, 'build', f)))) {
    log(`compiling better-sqlite3 ${version}'s binding for Node ${node.version} (SQLite itself as npm ci compiled it)`);
    execFileSync('cp', ['-R', `${src}/.`, work]);
    try {
      run(process.execPath, [gyp, 'configure', ...gypArgs], { cwd: work, env: gypEnv, timeout: 5 * 60_000 });
      // -o: take these as they are (make would rebuild them: their command line names Node's headers).
      run('make', ['-C', join(work, 'build'), `-j${Math.max(1, availableParallelism())}`, 'BUILDTYPE=Release', ...sqlite.flatMap((f) => ['-o', f]), 'better_sqlite3'], { timeout: 10 * 60_000 });
      checkAddon(node, src, join(work, 'build', 'Release', ADDON_FILE));
      built = true;
    } catch (e) {
      log(`reusing npm ci's SQLite did not work (${e.message.split('\n')[0]}); compiling everything`);
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
    }
  }
  if (!built) {
    log(`compiling better-sqlite3 ${version} for Node ${node.version} (once; about two minutes)`);
    for (const part of ['binding.gyp', 'package.json', 'src', 'deps']) execFileSync('cp', ['-R', join(src, part), work]);
    try {
      run(process.execPath, [gyp, 'rebuild', ...gypArgs], { cwd: work, env: gypEnv, timeout: 20 * 60_000 });
    } catch (e) {
      throw (/not found|No such file|python|make|g\+\+|cc:/i.test(e.message) ? new Unavailable(`cannot compile better-sqlite3: ${e.message}`) : e);
    }
    checkAddon(node, src, join(work, 'build', 'Release', ADDON_FILE));
  }
  copyFileSync(join(work, 'build', 'Release', ADDON_FILE), addon);
  rmSync(work, { recursive: true, force: true });
  return addon;
}

/** The built addon must work in the Node it is for, not only load: open a database and query it. */
function checkAddon(node, src, file) {
  const script = `const D = require(${JSON.stringify(join(src, 'lib'))}); const db = new D(':memory:', { nativeBinding: require(${JSON.stringify(file)}) }); if (db.prepare('select 1 + 1 as x').get().x !== 2) throw new Error('wrong answer');`;
  run(node.bin, ['-e', script]);
}

/** Hash of everything an executable is made from. */
function inputsKey(node, addon) {
  const h = createHash('sha256');
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else h.update(`${relative(ROOT, p)}\0`).update(readFileSync(p)).update('\0');
    }
  };
  walk(join(ROOT, 'src'));
  for (const f of ['package.json', 'package-lock.json', 'scripts/package.mjs']) h.update(readFileSync(join(ROOT, f)));
  h.update(`${node.version}\0${process.platform}-${process.arch}\0${statSync(addon).size}`);
  return h.digest('hex').slice(0, 16);
}

/** The files a command reads at run time, carried inside the bundle. */
function embeddedFiles() {
  const files = {};
  for (const f of readdirSync(join(ROOT, 'src', 'dashboard'))) files[`dashboard/${f}`] = readFileSync(join(ROOT, 'src', 'dashboard', f), 'utf8');
  return files;
}

async function buildExecutable(node, addon, dir) {
  const esbuild = await import('esbuild');
  const { inject } = require('postject');
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  const standalone = { version, files: embeddedFiles() };
  const work = join(dir, 'work');
  mkdirSync(work, { recursive: true });
  const bundle = join(work, `${BINARY}.cjs`);
  await esbuild.build({
    entryPoints: [join(ROOT, 'src', 'cli', 'standalone.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    // ws's optional speed-ups: absent, it uses its JavaScript fallbacks.
    external: ['bufferutil', 'utf-8-validate'],
    banner: { js: `var MODELRELAY_STANDALONE = ${JSON.stringify(standalone)};` },
    // import.meta.url is read only in a checkout (src/standalone.ts says where the bundle differs).
    logOverride: { 'empty-import-meta': 'silent' },
    legalComments: 'none',
    logLevel: 'warning',
  });
  const blob = join(work, `${BINARY}.blob`);
  const config = join(work, 'sea.json');
  writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  run(node.bin, ['--experimental-sea-config', config], { cwd: work });
  const exe = join(dir, BINARY);
  copyFileSync(node.bin, exe);
  chmodSync(exe, 0o755);
  // Node's debug information is a sixth of the binary and useless to a user.
  if (process.platform === 'linux' && spawnSync('strip', ['--version']).status === 0) run('strip', [exe]);
  await quietly(() => inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE }));
  log(`built ${relative(ROOT, exe)} (${(statSync(exe).size / 1048576).toFixed(1)} MiB)`);
  copyFileSync(addon, join(dir, ADDON_FILE));
  rmSync(work, { recursive: true, force: true });
}

/** postject's ELF library warns about Node's many note sections, harmlessly: keep those lines out. */
async function quietly(fn) {
  const warn = console.warn;
  console.warn = (...args) => {
    if (!/^warning: Can't find string offset for section name/.test(String(args[0]))) warn(...args);
  };
  try {
    return await fn();
  } finally {
    console.warn = warn;
  }
}

async function main() {
  const node = seaNode();
  const addon = sqliteAddon(node);
  if (process.argv.includes('--runtime')) {
    // For the suite on Node 24 (scripts/test-node24.mjs): that Node and an addon built for it.
    process.stdout.write(`${JSON.stringify({ node: node.bin, addon, version: node.version })}\n`);
    return;
  }
  const key = inputsKey(node, addon);
  const built = join(CACHE, 'sea', key);
  if (!existsSync(join(built, 'done'))) {
    // One build at a time in the cache: the binary is over 100 MiB.
    rmSync(join(CACHE, 'sea'), { recursive: true, force: true });
    const tmp = `${built}.tmp`;
    mkdirSync(tmp, { recursive: true });
    await buildExecutable(node, addon, tmp);
    writeFileSync(join(tmp, 'done'), `${key}\n`);
    renameSync(tmp, built);
  } else {
    log(`up to date (${key})`);
  }
  // dist/bin/ already holds this build: leave it alone. Tests run in parallel ask for it at once, and
  // one may be running the binary (or building an image from it) while another asks.
  const stamp = join(OUT, '.inputs');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === key && [BINARY, ADDON_FILE, ...LINKS].every((f) => existsSync(join(OUT, f)))) {
    log(`${relative(ROOT, OUT)} holds this build already`);
    return;
  }
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  for (const f of [BINARY, ADDON_FILE]) {
    copyFileSync(join(built, f), join(OUT, f));
    chmodSync(join(OUT, f), 0o755);
  }
  for (const link of LINKS) symlinkSync(BINARY, join(OUT, link));
  writeFileSync(stamp, key);
  log(`${relative(ROOT, OUT)}: ${BINARY} with the links ${LINKS.join(', ')}, and ${ADDON_FILE} (Node ${node.version}, ${process.platform}-${process.arch})`);
}

withLock(main).catch((e) => {
  if (e instanceof Unavailable) {
    log(`unavailable: ${e.message}`);
    process.exit(3);
  }
  log(e.stack ?? String(e));
  process.exit(1);
});
