// The routing rule on its own: affinity over prefix, prefix over least loaded, and the load bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Router, type RoutingConfig } from '../../src/core/routing.js';

interface W {
  id: string;
  inFlight: number;
  cap: number;
}

function setup(config: Partial<RoutingConfig> = {}): { router: Router<W>; ws: Map<string, W>; pick: (h: Parameters<Router<W>['choose']>[0]) => ReturnType<Router<W>['choose']> } {
  const router = new Router<W>(config, { inFlight: (w) => w.inFlight, capacity: (w) => w.cap });
  const ws = new Map<string, W>();
  for (const id of ['a', 'b', 'c']) ws.set(id, { id, inFlight: 0, cap: 4 });
  const least = (): W => [...ws.values()].sort((x, y) => x.inFlight / x.cap - y.inFlight / y.cap)[0]!;
  return { router, ws, pick: (h) => router.choose(h, least(), (id) => ws.get(id)) };
}

describe('routing rule', () => {
  it('without hints, or in least-loaded mode, the least-loaded worker', () => {
    const { router, ws, pick } = setup();
    ws.get('a')!.inFlight = 2;
    router.learn({ prefix: [1, 2] }, 'a');
    assert.deepEqual(pick(undefined), { worker: ws.get('b'), reason: 'least_loaded', matched: 0 });
    const ll = setup({ mode: 'least-loaded' });
    ll.router.learn({ prefix: [1, 2] }, 'a');
    assert.equal(ll.pick({ prefix: [1, 2] }).reason, 'least_loaded');
    assert.equal(ll.router.index.size, 0, 'least-loaded learns nothing');
  });

  it('the worker holding the longest prefix, with how many blocks matched', () => {
    const { router, ws, pick } = setup();
    router.learn({ prefix: [1] }, 'a');
    router.learn({ prefix: [1, 2, 3] }, 'c');
    ws.get('c')!.inFlight = 1;
    assert.deepEqual(pick({ prefix: [1, 2, 3, 4] }), { worker: ws.get('c'), reason: 'prefix', matched: 3 });
  });

  it('an affinity key wins over a longer prefix elsewhere', () => {
    const { router, ws, pick } = setup();
    router.learn({ prefix: [1, 2, 3] }, 'a');
    router.learn({ prefix: [1], affinity: 77 }, 'b');
    assert.deepEqual(pick({ prefix: [1, 2, 3], affinity: 77 }), { worker: ws.get('b'), reason: 'affinity', matched: 0 });
    // The key moves with its last dispatch.
    router.learn({ affinity: 77 }, 'c');
    assert.equal(pick({ affinity: 77 }).worker.id, 'c');
  });

  it('a preferred worker much busier than the least loaded loses the request (load_bound)', () => {
    const { router, ws, pick } = setup({ loadFactor: 2 });
    router.learn({ prefix: [1] }, 'a');
    // a: (1+1)/4 against b: (0+1)/4 → 2 ≤ 2 × 1: a keeps it.
    ws.get('a')!.inFlight = 1;
    assert.equal(pick({ prefix: [1] }).worker.id, 'a');
    // a: (2+1)/4 against (0+1)/4 → 3 > 2: b gets it.
    ws.get('a')!.inFlight = 2;
    assert.deepEqual(pick({ prefix: [1] }), { worker: ws.get('b'), reason: 'load_bound', matched: 0 });
    // A larger factor tolerates more.
    const loose = setup({ loadFactor: 3 });
    loose.router.learn({ prefix: [1] }, 'a');
    loose.ws.get('a')!.inFlight = 2;
    assert.equal(loose.pick({ prefix: [1] }).worker.id, 'a');
  });

  it('the load bound weighs capacity: a bigger worker may hold more', () => {
    const { router, ws, pick } = setup({ loadFactor: 1 });
    ws.get('a')!.cap = 8;
    ws.get('a')!.inFlight = 3; // (3+1)/8 = 0.5
    ws.get('b')!.inFlight = 1; // (1+1)/4 = 0.5
    ws.get('c')!.inFlight = 1;
    router.learn({ prefix: [1] }, 'a');
    assert.equal(pick({ prefix: [1] }).worker.id, 'a');
  });

  it('a preferred worker that cannot take the request is load_bound; the affinity falls back to the prefix', () => {
    const { router, ws, pick } = setup();
    router.learn({ prefix: [1, 2], affinity: 5 }, 'a');
    router.learn({ prefix: [1] }, 'c');
    ws.delete('a'); // busy, draining or gone: not a candidate
    assert.deepEqual(pick({ prefix: [1, 2], affinity: 5 }), { worker: ws.get('c'), reason: 'prefix', matched: 1 });
    assert.deepEqual(pick({ affinity: 5 }).reason, 'load_bound');
    assert.deepEqual(pick({ prefix: [1, 2, 3] }), { worker: ws.get('c'), reason: 'prefix', matched: 1 }, 'the longest prefix a candidate holds');
    ws.delete('c');
    assert.equal(pick({ prefix: [1, 2] }).reason, 'load_bound', 'every holder busy: the least loaded, for load');
    assert.equal(pick({ prefix: [8] }).reason, 'least_loaded', 'nobody holds it');
  });

  it('preferred() names the holder among any serving workers, busy or not', () => {
    const { router } = setup();
    router.learn({ prefix: [1, 2] }, 'a');
    router.learn({ affinity: 9 }, 'b');
    assert.equal(router.preferred({ prefix: [1, 2, 3] }, () => true), 'a');
    assert.equal(router.preferred({ prefix: [1, 2], affinity: 9 }, () => true), 'b');
    assert.equal(router.preferred({ prefix: [1, 2] }, (id) => id !== 'a'), undefined);
    assert.equal(router.preferred(undefined, () => true), undefined);
  });

  it('forgetting a worker moves its conversations elsewhere', () => {
    const { router, ws, pick } = setup();
    router.learn({ prefix: [1, 2], affinity: 3 }, 'a');
    ws.get('b')!.inFlight = 1;
    router.forgetWorker('a');
    ws.get('a')!.inFlight = 1; // still connected in this toy, but forgotten
    const r = pick({ prefix: [1, 2], affinity: 3 });
    assert.equal(r.reason, 'least_loaded');
    assert.equal(r.worker.id, 'c');
  });
});
