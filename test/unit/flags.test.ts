// The flag table parser: repeatable (list) flags from the command line or their env var.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FlagSpec, helpText, parseFlags } from '../../src/cli/flags.js';

const SPECS: FlagSpec[] = [
  { name: 'alias', env: 'ALIASES', kind: 'list', separator: ';', help: 'An alias (repeatable).' },
  { name: 'name', env: 'NAME', kind: 'string', default: 'x', help: 'A name.' },
];

describe('flags', () => {
  it('a list flag collects every occurrence, in order', () => {
    const v = parseFlags(SPECS, ['--alias', 'a=b|c', '--name', 'n', '--alias=d=e'], {});
    assert.ok(typeof v === 'object');
    assert.deepEqual(v['alias'], ['a=b|c', 'd=e']);
    assert.equal(v['name'], 'n');
  });

  it('from the env var, cut at its separator; the command line wins', () => {
    const fromEnv = parseFlags(SPECS, [], { ALIASES: 'a=b|c; d=e;;' });
    assert.ok(typeof fromEnv === 'object');
    assert.deepEqual(fromEnv['alias'], ['a=b|c', 'd=e']);
    const both = parseFlags(SPECS, ['--alias', 'x=y'], { ALIASES: 'a=b' });
    assert.ok(typeof both === 'object');
    assert.deepEqual(both['alias'], ['x=y']);
  });

  it('absent: an empty list', () => {
    const v = parseFlags(SPECS, [], {});
    assert.ok(typeof v === 'object');
    assert.deepEqual(v['alias'], []);
  });

  it('a plain string flag given twice keeps the last, as before', () => {
    const v = parseFlags(SPECS, ['--name', 'a', '--name', 'b'], {});
    assert.ok(typeof v === 'object');
    assert.equal(v['name'], 'b');
  });

  it('--help says which flags repeat and how their env var is cut', () => {
    assert.match(helpText('cmd', 'does things', SPECS), /env ALIASES \(entries separated by ';'\); repeatable/);
  });
});
