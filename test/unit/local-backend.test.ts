// Several backends on one worker: which one a request goes to, and what the server is told.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { DEFAULT_HEALTH_OPTIONS } from '../../src/worker/backend-health.js';
import { LocalBackend, advertise, route } from '../../src/worker/local-backend.js';

const made: LocalBackend[] = [];
after(() => made.forEach((b) => b.close()));

function backend(port: number, models: string[], maxConcurrency: number): LocalBackend {
  const b = new LocalBackend({ url: `http://127.0.0.1:${port}`, models, modelMap: [], maxConcurrency, egress: { proxy: undefined, reason: 'test' } }, DEFAULT_HEALTH_OPTIONS, () => {});
  made.push(b);
  return b;
}

test('route: the least loaded backend that serves the model and is up; busy when those are full; a down one last', () => {
  const a1 = backend(1, ['a'], 2);
  const a2 = backend(2, ['a', 'b'], 4);
  const c = backend(3, ['c'], 1);
  const all = [a1, a2, c];
  assert.equal(route(all, 'c'), c);
  assert.equal(route(all, 'zzz'), undefined, 'no backend serves it');
  a1.running = 1;
  assert.equal(route(all, 'a'), a2, '1/2 busy vs 0/4');
  a2.running = 3;
  assert.equal(route(all, 'a'), a1, '1/2 vs 3/4');
  a1.running = 2;
  a2.running = 4;
  assert.equal(route(all, 'a'), 'busy');
  a2.health.markDown('test');
  assert.equal(route(all, 'b'), a2, 'a down backend is used only when nothing else can (its call fails fast)');
  assert.equal(route(all, 'a'), 'busy', 'a1 is up but full');
  a2.health.stop();
});

test('route: a lone backend takes any model, as a single-backend worker does', () => {
  const only = backend(4, ['x'], 1);
  assert.equal(route([only], 'anything'), only);
  only.running = 1;
  assert.equal(route([only], 'x'), 'busy');
});

test('advertise: a down backend\'s models are withdrawn; all down keeps every model and says why', () => {
  const a = backend(5, ['a', 'shared'], 1);
  const b = backend(6, ['b', 'shared'], 1);
  assert.deepEqual(advertise([a, b]), { models: ['a', 'shared', 'b'], down: undefined });
  a.health.markDown('the backend at A is unreachable (ECONNREFUSED)');
  assert.deepEqual(advertise([a, b]), { models: ['b', 'shared'], down: undefined });
  b.health.markDown('the backend at B is unreachable (ECONNREFUSED)');
  assert.deepEqual(advertise([a, b]), {
    models: ['a', 'shared', 'b'],
    down: 'all 2 backends are down: the backend at A is unreachable (ECONNREFUSED); the backend at B is unreachable (ECONNREFUSED)',
  });
  assert.deepEqual(advertise([a]), { models: ['a', 'shared'], down: 'the backend at A is unreachable (ECONNREFUSED)' });
  a.health.stop();
  b.health.stop();
});
