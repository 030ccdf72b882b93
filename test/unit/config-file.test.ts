// Config files (--config): TOML or JSON, keys named as the flags, flag > env > file > default, and
// a mistake in the file stops the command naming the file, the key and what is allowed.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UsageError, parseCommand, type ParsedCommand } from '../../src/cli/flags.js';
import { SERVER_FLAGS } from '../../src/cli/server-flags.js';
import { WORKER_FLAGS } from '../../src/cli/worker-flags.js';

const dir = mkdtempSync(join(tmpdir(), 'mr-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

function parse(specs = SERVER_FLAGS, argv: string[] = [], env: NodeJS.ProcessEnv = {}, extras: string[] = []): ParsedCommand {
  const r = parseCommand(specs, argv, env, extras);
  assert.ok(typeof r !== 'string');
  return r;
}

function usageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `a UsageError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('every flag is a key; flag > env > file > default', () => {
  const toml = file('server.toml', `listen = "127.0.0.1:9000"\nmax-queue-len = 7\nqueue-timeout = 12\nheader-timeout = 4\ntrust-proxy = true\nworker-secret = "from-the-file-0123456789"\ncors-origins = ["https://a.example", "https://b.example"]\n`);
  const r = parse(SERVER_FLAGS, ['--config', toml, '--max-queue-len', '9'], { QUEUE_TIMEOUT_SECS: '20' });
  assert.equal(r.file?.path, toml);
  assert.equal(r.flags['max-queue-len'], 9, 'the flag wins over the file');
  assert.equal(r.flags['queue-timeout'], 20, 'the env var wins over the file');
  assert.equal(r.flags['header-timeout'], 4, 'the file wins over the default');
  assert.equal(r.flags['listen'], '127.0.0.1:9000');
  assert.equal(r.flags['trust-proxy'], true);
  assert.equal(r.flags['cors-origins'], 'https://a.example,https://b.example', 'a list is a comma-separated string');
  assert.equal(r.flags['body-timeout'], 60, 'untouched keys keep their default');
  // CONFIG_FILE names the file as well.
  assert.equal(parse(SERVER_FLAGS, [], { CONFIG_FILE: toml }).flags['listen'], '127.0.0.1:9000');
});

test('JSON by extension; models as a list or a string; a required flag may come from the file', () => {
  const json = file('worker.json', JSON.stringify({ 'proxy-url': 'http://relay:8080', 'worker-secret-file': '/run/secret', models: ['a', 'b'], 'max-concurrency': 3 }));
  const r = parse(WORKER_FLAGS, ['--config', json]);
  assert.equal(r.flags['proxy-url'], 'http://relay:8080');
  assert.equal(r.flags['models'], 'a,b');
  assert.equal(r.flags['max-concurrency'], 3);
  const str = file('worker2.json', JSON.stringify({ 'proxy-url': 'http://relay:8080', 'worker-secret': 'x'.repeat(20), models: 'a, b' }));
  assert.equal(parse(WORKER_FLAGS, ['--config', str]).flags['models'], 'a, b');
  usageError(() => parse(WORKER_FLAGS, ['--config', file('empty.json', '{}')]), /missing --proxy-url .*'proxy-url' in the --config file/);
});

test('a repeatable flag takes a list, or one string cut at its separator as in its env var', () => {
  const toml = file('aliases.toml', 'model-alias = ["chat=qwen2.5|llama3.2", "code=qwen2.5-coder"]\n');
  assert.deepEqual(parse(SERVER_FLAGS, ['--config', toml]).flags['model-alias'], ['chat=qwen2.5|llama3.2', 'code=qwen2.5-coder']);
  const str = file('aliases2.json', JSON.stringify({ 'model-alias': 'chat=qwen2.5; code=qwen2.5-coder' }));
  assert.deepEqual(parse(SERVER_FLAGS, ['--config', str]).flags['model-alias'], ['chat=qwen2.5', 'code=qwen2.5-coder']);
  assert.deepEqual(parse(SERVER_FLAGS, ['--config', toml, '--model-alias', 'x=y']).flags['model-alias'], ['x=y'], 'the command line replaces the list');
  usageError(() => parse(SERVER_FLAGS, ['--config', file('aliases3.toml', 'model-alias = 5\n')]), /key 'model-alias' must be a list of strings, got 5/);
});

test('a secret in the environment beats its -file twin in the config file', () => {
  const toml = file('secret.toml', 'worker-secret-file = "/etc/modelrelay/secret"\n');
  const r = parse(SERVER_FLAGS, ['--config', toml], { WORKER_SECRET: 'env-secret-0123456789' });
  assert.equal(r.flags['worker-secret'], 'env-secret-0123456789');
  assert.equal(r.flags['worker-secret-file'], undefined);
  const both = file('both.toml', 'worker-secret = "a-secret-in-the-file-0123"\nworker-secret-file = "/x"\n');
  assert.equal(parse(SERVER_FLAGS, ['--config', both]).flags['worker-secret-file'], '/x', 'both from one place: the command says not both');
});

test('an unknown key names the file, the key, a near match and the allowed keys', () => {
  const toml = file('typo.toml', 'listen = ":8080"\nmax-queue = 5\n');
  usageError(() => parse(SERVER_FLAGS, ['--config', toml]), new RegExp(`^${toml.replace(/[.]/g, '\\.')}: unknown key 'max-queue' \\(did you mean 'max-queue-len'\\?\\); allowed keys: listen, tls-cert, .*log-level$`));
  usageError(() => parse(SERVER_FLAGS, ['--config', file('self.toml', 'config = "other.toml"\n')]), /unknown key 'config'/);
});

test('a bad value names the file, the key and what is allowed', () => {
  usageError(() => parse(SERVER_FLAGS, ['--config', file('n.toml', 'max-queue-len = "ten"\n')]), /n\.toml: key 'max-queue-len' must be a non-negative number, got "ten"/);
  usageError(() => parse(SERVER_FLAGS, ['--config', file('neg.json', '{"queue-timeout": -1}')]), /key 'queue-timeout' must be a non-negative number, got -1/);
  usageError(() => parse(SERVER_FLAGS, ['--config', file('b.toml', 'trust-proxy = "maybe"\n')]), /key 'trust-proxy' must be true or false, got "maybe"/);
  usageError(() => parse(SERVER_FLAGS, ['--config', file('s.toml', 'listen = { host = "x" }\n')]), /key 'listen' must be a string/);
  usageError(() => parse(SERVER_FLAGS, ['--config', file('bad.toml', 'listen = \n')]), /bad\.toml: not valid TOML/);
  usageError(() => parse(SERVER_FLAGS, ['--config', file('bad.json', '{"listen": ')]), /bad\.json: not valid JSON/);
  usageError(() => parse(SERVER_FLAGS, ['--config', file('conf.yaml', 'listen: x\n')]), /must end in \.toml or \.json/);
  usageError(() => parse(SERVER_FLAGS, ['--config', join(dir, 'missing.toml')]), /cannot read --config .*missing\.toml/);
});

test('keys the command allows besides the flags are handed back unchecked', () => {
  const toml = file('extras.toml', 'proxy-url = "http://r"\nworker-secret = "s-0123456789abcdef"\n[[backends]]\nbackend-url = "http://127.0.0.1:8001"\n');
  const r = parse(WORKER_FLAGS, ['--config', toml], {}, ['backends']);
  assert.deepEqual(JSON.parse(JSON.stringify(r.file?.extras)), { backends: [{ 'backend-url': 'http://127.0.0.1:8001' }] });
  usageError(() => parse(WORKER_FLAGS, ['--config', toml]), /unknown key 'backends'/);
});

test('a config file holding a secret that others can read is a warning', () => {
  const open = file('open.toml', 'worker-secret = "a-secret-in-the-file-0123"\n', 0o644);
  assert.match(parse(SERVER_FLAGS, ['--config', open]).file!.warnings.join('\n'), /holds worker-secret and other users can read it: chmod 600/);
  const closed = file('closed.toml', 'worker-secret = "a-secret-in-the-file-0123"\n', 0o600);
  assert.deepEqual(parse(SERVER_FLAGS, ['--config', closed]).file!.warnings, []);
});
