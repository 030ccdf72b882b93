// "Every flag also reads an environment variable; the flag wins": checked for every flag of both
// commands against the flag tables the CLIs parse with (the integration tests check the wiring).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CONFIG_FLAG, parseFlags, type FlagSpec, type FlagValues } from '../../src/cli/flags.js';
import { SERVER_FLAGS } from '../../src/cli/server-flags.js';
import { WORKER_FLAGS } from '../../src/cli/worker-flags.js';

// --config names a file it reads: two empty ones stand for "from the env var" and "from the flag".
const dir = mkdtempSync(join(tmpdir(), 'flag-env-'));
const CONFIG_FILES = ['env.toml', 'flag.toml'].map((f) => join(dir, f));
for (const f of CONFIG_FILES) writeFileSync(f, '');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A raw env value and what it parses to, then command-line arguments with a different value. */
function samples(s: FlagSpec): { env: [string, unknown]; argv: string[]; flag: unknown } {
  if (s.name === CONFIG_FLAG) return { env: [CONFIG_FILES[0]!, CONFIG_FILES[0]], argv: [`--${s.name}`, CONFIG_FILES[1]!], flag: CONFIG_FILES[1] };
  if (s.kind === 'number') return { env: ['7', 7], argv: [`--${s.name}`, '11'], flag: 11 };
  // A boolean flag on the command line can only say true, so its env var says false.
  if (s.kind === 'boolean') return { env: ['false', false], argv: [`--${s.name}`], flag: true };
  const sep = s.separator ?? ',';
  if (s.kind === 'list') return { env: [`a=b${sep}c=d`, ['a=b', 'c=d']], argv: [`--${s.name}`, 'x=y'], flag: ['x=y'] };
  return { env: [`${s.name}-from-env`, `${s.name}-from-env`], argv: [`--${s.name}`, `${s.name}-from-flag`], flag: `${s.name}-from-flag` };
}

function parse(specs: FlagSpec[], argv: string[], env: NodeJS.ProcessEnv): FlagValues {
  const out = parseFlags(specs, argv, env);
  assert.ok(typeof out === 'object');
  return out;
}

for (const [command, specs] of [['modelrelay-server', SERVER_FLAGS], ['modelrelay-worker', WORKER_FLAGS]] as const) {
  test(`${command}: every flag reads its env var, and the flag beats it`, () => {
    // The required flags, given by env var so each case below parses.
    const base: NodeJS.ProcessEnv = {};
    for (const s of specs) if (s.required) base[s.env] = samples(s).env[0];
    const envs = specs.map((s) => s.env);
    assert.equal(new Set(envs).size, envs.length, `${command}: two flags share an env var`);
    for (const s of specs) {
      const { env: [envRaw, envValue], argv, flag } = samples(s);
      assert.deepEqual(parse(specs, [], { ...base, [s.env]: envRaw })[s.name], envValue, `--${s.name} from ${s.env}`);
      assert.deepEqual(parse(specs, argv, { ...base, [s.env]: envRaw })[s.name], flag, `--${s.name} given as a flag and as ${s.env}`);
    }
  });
}

test('an empty env var counts as unset: the default applies', () => {
  assert.equal(parse(SERVER_FLAGS, [], { WORKER_SECRET: 's', MAX_QUEUE_LEN: '' })['max-queue-len'], 100);
});
