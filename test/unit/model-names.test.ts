// The worker's public model names: --models PUBLIC=BACKEND entries, --model-map over discovered
// names, and Ollama's `name` ≡ `name:latest`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelNames, parseModelEntries, parseModelMap } from '../../src/worker/model-names.js';

describe('worker model names', () => {
  it('--models: PUBLIC=BACKEND entries beside plain names', () => {
    const names = ModelNames.listed(parseModelEntries(['chat=qwen2.5:7b-instruct', 'embed = nomic-embed-text', 'llama3.2']));
    assert.deepEqual(names.advertised, ['chat', 'embed', 'llama3.2']);
    assert.equal(names.backendFor('chat'), 'qwen2.5:7b-instruct');
    assert.equal(names.backendFor('embed'), 'nomic-embed-text');
    assert.equal(names.backendFor('llama3.2'), undefined, 'a plain name needs no rewrite');
    assert.equal(names.backendFor('qwen2.5:7b-instruct'), undefined, 'the hidden backend name is not advertised');
    assert.ok(names.rewrites);
    assert.equal(ModelNames.listed(parseModelEntries(['a', 'b'])).rewrites, false);
  });

  it('--models: bad entries are refused with the entry named', () => {
    assert.throws(() => parseModelEntries(['chat=']), /'chat=' must be NAME or PUBLIC=BACKEND/);
    assert.throws(() => parseModelEntries(['=x']), /must be NAME or PUBLIC=BACKEND/);
    assert.throws(() => parseModelEntries(['chat=a', 'chat=b']), /'chat' is listed twice/);
    assert.throws(() => parseModelEntries(['*=a']), /can't be renamed/);
    // A backend name may itself contain '=' after the first one.
    assert.deepEqual(parseModelEntries(['x=a=b']), [{ name: 'x', backend: 'a=b' }]);
  });

  it("name and name:latest are one model: a ':latest' name is advertised bare too", () => {
    const listed = ModelNames.listed(parseModelEntries(['llama3.2:latest', 'qwen:7b']));
    assert.deepEqual(listed.advertised, ['llama3.2:latest', 'qwen:7b', 'llama3.2']);
    assert.equal(listed.backendFor('llama3.2'), 'llama3.2:latest');
    assert.equal(listed.backendFor('llama3.2:latest'), undefined);
    // A twin never takes a name an entry already has.
    const taken = ModelNames.listed(parseModelEntries(['llama3.2:latest', 'llama3.2=other']));
    assert.equal(taken.backendFor('llama3.2'), 'other');
    // A renamed entry gets no twin: its public name is exactly what the operator wrote.
    assert.deepEqual(ModelNames.listed(parseModelEntries(['chat=llama3.2:latest'])).advertised, ['chat']);
  });

  it('--models auto with --model-map: discovered names renamed, either spelling of :latest matches', () => {
    const map = parseModelMap(['llama3.2=chat', 'qwen2.5:7b-instruct:latest=code', 'nomic-embed-text:latest=embed', 'nomic-embed-text=embed-2']);
    const names = ModelNames.discovered(['llama3.2:latest', 'qwen2.5:7b-instruct', 'nomic-embed-text:latest', 'mistral:latest'], map);
    assert.deepEqual(names.advertised, ['chat', 'code', 'embed', 'embed-2', 'mistral:latest', 'mistral']);
    assert.equal(names.backendFor('chat'), 'llama3.2:latest');
    assert.equal(names.backendFor('code'), 'qwen2.5:7b-instruct');
    assert.equal(names.backendFor('embed-2'), 'nomic-embed-text:latest');
    assert.equal(names.backendFor('mistral'), 'mistral:latest');
    assert.deepEqual(ModelNames.unmatched(['llama3.2:latest'], parseModelMap(['llama3.2=a', 'gone=b'])), ['gone']);
  });

  it('a mapped public name wins over a backend model of the same name', () => {
    const names = ModelNames.discovered(['big', 'chat'], parseModelMap(['big=chat']));
    assert.deepEqual(names.advertised, ['chat']);
    assert.equal(names.backendFor('chat'), 'big');
  });

  it('--model-map: bad entries are refused', () => {
    assert.throws(() => parseModelMap(['llama3.2']), /must be BACKEND=PUBLIC/);
    assert.throws(() => parseModelMap(['a=x', 'b=x']), /'x' is mapped twice/);
  });
});
