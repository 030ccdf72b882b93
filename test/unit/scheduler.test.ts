// Unit tests for the pure scheduler: events go in with a fake clock (plain numbers), commands come out.
// Every call goes through `checked()`, which runs `checkInvariants()` after each step.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PASSES, Scheduler, type Command, type SchedulerConfig, type WorkerSpec } from '../../src/core/scheduler.js';
import type { RoutingConfig, RoutingHints } from '../../src/core/routing.js';
import { ModelAliases } from '../../src/core/model-aliases.js';
import { prng } from '../helpers/prng.js';

// ---------- helpers ----------

const HOUR = 3_600_000;

/** Timeouts off and heartbeats far away, so each test turns on only the rule it checks. */
const QUIET: SchedulerConfig = {
  maxQueueLen: 0,
  queueTimeoutMs: 0,
  requestTimeoutMs: 0,
  heartbeatIntervalMs: 1000 * HOUR,
  heartbeatTimeoutMs: 3000 * HOUR,
  maxRequeues: 3,
  cancelGraceMs: 500,
  breakerFailures: 0,
  breakerCooldownMs: 1000,
  priorityAgingMs: 0,
};

/** A scheduler whose every method call is followed by `checkInvariants()`. */
function checked(s: Scheduler): Scheduler {
  return new Proxy(s, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function' || prop === 'checkInvariants' || prop === 'constructor') return v;
      return (...args: unknown[]) => {
        const out: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
        target.checkInvariants();
        return out;
      };
    },
  });
}

function make(config: Partial<SchedulerConfig> = {}, aliases: string[] = [], routing: Partial<RoutingConfig> = {}): Scheduler {
  return checked(new Scheduler({ ...QUIET, ...config }, ModelAliases.parse(aliases), routing));
}

function worker(id: string, models: string[], maxConcurrent = 1, cancelAck = false): WorkerSpec {
  return { id, name: `name-${id}`, models, maxConcurrent, cancelAck };
}

const dispatch = (requestId: string, workerId: string): Command => ({ type: 'dispatch', requestId, workerId });
/** A dispatch of a request that named an alias, served as `target`. */
const dispatchAs = (requestId: string, workerId: string, target: string): Command => ({ type: 'dispatch', requestId, workerId, target });

function only<T extends Command['type']>(cmds: Command[], type: T): Extract<Command, { type: T }>[] {
  return cmds.filter((c): c is Extract<Command, { type: T }> => c.type === type);
}

/** Asserts `cmds` is exactly one fail with this code for this request; returns its message. */
function expectFail(cmds: Command[], requestId: string, code: string): string {
  assert.equal(cmds.length, 1, `expected one command, got ${JSON.stringify(cmds)}`);
  const c = cmds[0]!;
  assert.equal(c.type, 'fail', JSON.stringify(c));
  assert.ok(c.type === 'fail', 'narrowing');
  assert.equal(c.requestId, requestId);
  assert.equal(c.code, code);
  return c.message;
}

/** Where each request was dispatched, in order. */
/** Fills every worker serving `model` (`total` = their summed capacity) and completes it all while
 * they are full, so each has shown its full capacity. */
function proveAll(s: Scheduler, model: string, total: number): void {
  const running = only(Array.from({ length: total }, (_, i) => s.submit(`prove${i}`, model, 0)).flat(), 'dispatch');
  assert.equal(running.length, total, 'every proving request dispatched');
  for (const c of running) s.complete(c.requestId, c.workerId, 0);
}

const targets = (cmds: Command[]): string[] => only(cmds, 'dispatch').map((c) => `${c.requestId}>${c.workerId}`);

// ---------- eligibility ----------

describe('eligibility', () => {
  it('routes a request only to a worker serving that exact model', () => {
    const s = make();
    s.registerWorker(worker('A', ['m1'], 4), 0);
    s.registerWorker(worker('B', ['m2'], 4), 0);
    assert.deepEqual(s.submit('r1', 'm2', 1), [dispatch('r1', 'B')]);
    assert.deepEqual(s.submit('r2', 'm1', 1), [dispatch('r2', 'A')]);
    assert.deepEqual(s.submit('r3', 'm2', 1), [dispatch('r3', 'B')]);
  });

  it("a '*' worker serves any model, and its wildcard isn't listed as a model", () => {
    const s = make();
    s.registerWorker(worker('W', ['*'], 2), 0);
    assert.deepEqual(s.submit('r1', 'anything', 1), [dispatch('r1', 'W')]);
    assert.deepEqual(s.submit('r2', 'other/model:7b', 1), [dispatch('r2', 'W')]);
    assert.deepEqual(s.models(), []);
  });

  it('serves() says whether a request for a model would find a worker (GET /v1/models/{id})', () => {
    const s = make();
    s.registerWorker(worker('A', ['m1'], 1), 0);
    assert.equal(s.serves('m1'), true);
    assert.equal(s.serves('m2'), false);
    s.registerWorker(worker('W', ['*'], 1), 0);
    assert.equal(s.serves('m2'), true, 'a * worker serves it');
  });

  it('a worker serving a different model is not used even when idle', () => {
    const s = make();
    s.registerWorker(worker('A', ['m1'], 1), 0);
    s.registerWorker(worker('B', ['m2'], 1), 0);
    s.submit('r1', 'm1', 1);
    assert.deepEqual(s.submit('r2', 'm1', 2), [], 'B is idle but does not serve m1');
    assert.equal(s.requestState('r2'), 'queued');
  });

  it('a draining worker gets nothing new, even when it frees a slot', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 4), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    assert.deepEqual(s.submit('r1', 'm', 1), [dispatch('r1', 'A')]);
    assert.deepEqual(s.drainWorker('A', 2), []);
    assert.deepEqual(s.submit('r2', 'm', 3), [dispatch('r2', 'B')], 'A is the less busy one but is draining');
    assert.deepEqual(s.submit('r3', 'm', 4), [], 'B is full, A is draining: queue');
    assert.deepEqual(s.complete('r1', 'A', 5), [], 'A freed a slot but must not pull from the queue');
    assert.equal(s.queueDepth, 1);
    assert.deepEqual(s.complete('r2', 'B', 6), [dispatch('r3', 'B')]);
  });

  it('a full worker (inFlight == maxConcurrent) gets nothing', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    assert.deepEqual(s.submit('r1', 'm', 1), [dispatch('r1', 'A')]);
    assert.deepEqual(s.submit('r2', 'm', 1), [dispatch('r2', 'A')]);
    assert.deepEqual(s.submit('r3', 'm', 1), []);
    assert.equal(s.queueDepth, 1);
    assert.equal(s.workerList()[0]!.inFlight, 2);
  });
});

// ---------- selection ----------

describe('selection', () => {
  it('picks the lowest utilisation: A 1/4 busy beats B 1/2 busy (even though B is due by round-robin)', () => {
    const s = make();
    s.registerWorker(worker('B', ['m'], 2), 0);
    s.registerWorker(worker('A', ['m'], 4), 0);
    proveAll(s, 'm', 6);
    assert.deepEqual(s.submit('r1', 'm', 1), [dispatch('r1', 'B')]);
    assert.deepEqual(s.submit('r2', 'm', 1), [dispatch('r2', 'A')]);
    // A: 1/4, B: 1/2. Equal in-flight counts, B dispatched to longer ago, yet A is less utilised.
    assert.deepEqual(s.submit('r3', 'm', 1), [dispatch('r3', 'A')]);
  });

  it('compares utilisation, not in-flight counts: A 2/8 beats B 1/2', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 8), 0);
    s.registerWorker(worker('B', ['m'], 2), 0);
    proveAll(s, 'm', 10);
    assert.deepEqual(targets([...s.submit('r1', 'm', 1), ...s.submit('r2', 'm', 1), ...s.submit('r3', 'm', 1)]), ['r1>B', 'r2>A', 'r3>A']);
    assert.deepEqual(s.submit('r4', 'm', 1), [dispatch('r4', 'A')]);
  });

  it('weighs by shown capacity, not claimed: a fresh worker claiming 1000 does not outrank a proven one', () => {
    const s = make();
    s.registerWorker(worker('honest', ['m'], 4), 0);
    proveAll(s, 'm', 4);
    s.registerWorker(worker('greedy', ['m'], 1000), 1);
    // greedy counts as capacity 1 until it completes work: it gets one, then honest takes the rest
    // while it has room. Claimed capacity still counts for eligibility, so nothing queues needlessly.
    const cmds = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'].flatMap((id) => s.submit(id, 'm', 2));
    assert.deepEqual(targets(cmds), ['r1>greedy', 'r2>honest', 'r3>honest', 'r4>honest', 'r5>honest', 'r6>greedy']);
    // Once greedy finishes work at 2 in flight, it has shown 2.
    s.complete('r1', 'greedy', 3);
    s.complete('r2', 'honest', 3);
    const w = s.workerList().find((x) => x.id === 'greedy')!;
    assert.equal(w.inFlight, 1);
  });

  it('two equal idle workers, four requests: 2 and 2, alternating', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 4), 0);
    s.registerWorker(worker('B', ['m'], 4), 0);
    const cmds = ['r1', 'r2', 'r3', 'r4'].flatMap((id) => s.submit(id, 'm', 1));
    assert.deepEqual(targets(cmds), ['r1>A', 'r2>B', 'r3>A', 'r4>B']);
  });

  it('ties are broken round-robin even when every request completes before the next (always both idle)', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 4), 0);
    s.registerWorker(worker('B', ['m'], 4), 0);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [c] = s.submit(`r${i}`, 'm', i);
      assert.ok(c?.type === 'dispatch', `expected a dispatch, got ${JSON.stringify(c)}`);
      seen.push(c.workerId);
      s.complete(`r${i}`, c.workerId, i);
    }
    assert.deepEqual(seen, ['A', 'B', 'A', 'B', 'A', 'B']);
  });

  it('round-robin spans exact and wildcard workers', () => {
    const s = make();
    s.registerWorker(worker('E', ['m'], 1), 0);
    s.registerWorker(worker('W', ['*'], 1), 0);
    const a = s.submit('r1', 'm', 1);
    s.complete('r1', 'E', 2);
    const b = s.submit('r2', 'm', 3);
    assert.deepEqual(targets([...a, ...b]), ['r1>E', 'r2>W']);
  });
});

// ---------- queue ----------

describe('queue', () => {
  it('waits when no worker is eligible and is dispatched on complete()', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    assert.deepEqual(s.submit('r2', 'm', 2), []);
    assert.equal(s.requestState('r2'), 'queued');
    assert.equal(s.workerOf('r2'), undefined);
    assert.equal(s.queueDepth, 1);
    assert.deepEqual(s.complete('r1', 'A', 3), [dispatch('r2', 'A')]);
    assert.equal(s.requestState('r2'), 'running');
    assert.equal(s.queueDepth, 0);
  });

  it('is FIFO among requests for the same model', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    for (const id of ['r2', 'r3', 'r4', 'r5']) assert.deepEqual(s.submit(id, 'm', 2), []);
    const order: string[] = [];
    let running = 'r1';
    for (let t = 3; t < 7; t++) {
      const [c, ...rest] = s.complete(running, 'A', t);
      assert.equal(rest.length, 0);
      assert.ok(c?.type === 'dispatch', `expected a dispatch, got ${JSON.stringify(c)}`);
      order.push(c.requestId);
      running = c.requestId;
    }
    assert.deepEqual(order, ['r2', 'r3', 'r4', 'r5']);
  });

  it('has no head-of-line blocking: a waiting request for busy X does not hold up model Y', () => {
    const s = make();
    s.registerWorker(worker('A', ['X'], 1), 0);
    s.registerWorker(worker('B', ['Y'], 1), 0);
    s.submit('x1', 'X', 1);
    assert.deepEqual(s.submit('x2', 'X', 2), []);
    assert.deepEqual(s.submit('y1', 'Y', 3), [dispatch('y1', 'B')]);
    assert.equal(s.requestState('x2'), 'queued');
  });

  it('no head-of-line blocking on one worker serving two models either', () => {
    const s = make();
    s.registerWorker(worker('A', ['X'], 1), 0);
    s.registerWorker(worker('AB', ['X', 'Y'], 1), 0);
    s.submit('x1', 'X', 1);
    s.submit('x2', 'X', 1); // → AB
    assert.deepEqual(s.submit('x3', 'X', 2), []);
    assert.deepEqual(s.submit('y1', 'Y', 3), []);
    // A frees a slot: only X is its business.
    assert.deepEqual(s.complete('x1', 'A', 4), [dispatch('x3', 'A')]);
    // AB frees a slot: y1 is the only waiting request it can serve.
    assert.deepEqual(s.complete('x2', 'AB', 5), [dispatch('y1', 'AB')]);
  });

  it('a wildcard worker freeing a slot takes the oldest waiting request across models', () => {
    const s = make();
    s.registerWorker(worker('W', ['*'], 1), 0);
    s.submit('w0', 'Z', 1); // W busy
    s.registerWorker(worker('A', ['X'], 1), 0);
    s.registerWorker(worker('B', ['Y'], 1), 0);
    assert.deepEqual(s.submit('x1', 'X', 2), [dispatch('x1', 'A')]);
    assert.deepEqual(s.submit('y1', 'Y', 2), [dispatch('y1', 'B')]);
    s.submit('x2', 'X', 3); // queue X created first
    s.submit('y3', 'Y', 4);
    s.submit('x4', 'X', 5);
    assert.deepEqual(s.complete('x1', 'A', 6), [dispatch('x2', 'A')]);
    // Waiting now: y3 (older) and x4 (newer, in the queue that was created first).
    assert.deepEqual(s.complete('w0', 'W', 7), [dispatch('y3', 'W')]);
    assert.deepEqual(s.complete('y3', 'W', 8), [dispatch('x4', 'W')]);
  });

  it("maxQueueLen bounds the queue: the next one fails with 'queue_full'", () => {
    const s = make({ maxQueueLen: 2 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['n'], 1), 0);
    s.submit('r1', 'm', 1);
    assert.deepEqual(s.submit('r2', 'm', 1), []);
    assert.deepEqual(s.submit('r3', 'm', 1), []);
    expectFail(s.submit('r4', 'm', 1), 'r4', 'queue_full');
    assert.equal(s.queueDepth, 2);
    assert.equal(s.requestState('r4'), undefined);
    // A request that needs no queue is still served.
    assert.deepEqual(s.submit('n1', 'n', 1), [dispatch('n1', 'B')]);
    // Room again once the queue moves.
    s.complete('r1', 'A', 2);
    assert.deepEqual(s.submit('r5', 'm', 3), []);
    assert.equal(s.queueDepth, 2);
  });

  it('maxQueueLen 0 means unlimited', () => {
    const s = make({ maxQueueLen: 0 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r0', 'm', 0);
    for (let i = 1; i <= 500; i++) assert.deepEqual(s.submit(`r${i}`, 'm', i), []);
    assert.equal(s.queueDepth, 500);
  });
});

// ---------- dispatch as soon as capacity appears ----------

describe('dispatch at once when capacity appears', () => {
  it('registerWorker() takes waiting requests', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    s.submit('r3', 'm', 3);
    assert.deepEqual(s.registerWorker(worker('B', ['m'], 2), 4), [dispatch('r2', 'B'), dispatch('r3', 'B')]);
    assert.equal(s.queueDepth, 0);
  });

  it('updateModels() adding a model takes waiting requests for it', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['other'], 1), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    assert.deepEqual(s.updateModels('B', ['other', 'm'], 3), [dispatch('r2', 'B')]);
    assert.deepEqual(s.models(), ['m', 'other']);
  });

  it('updateModels() removing a model stops routing it there', () => {
    const s = make();
    s.registerWorker(worker('A', ['m', 'n'], 2), 0);
    s.updateModels('A', ['n'], 1);
    expectFail(s.submit('r1', 'm', 2), 'r1', 'model_not_found');
    assert.deepEqual(s.submit('r2', 'n', 2), [dispatch('r2', 'A')]);
  });

  it('a requeue (worker lost) is dispatched at once to another eligible worker', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 2), 0);
    assert.deepEqual(s.submit('r1', 'm', 1), [dispatch('r1', 'A')]);
    assert.deepEqual(s.submit('r2', 'm', 1), [dispatch('r2', 'B')]);
    assert.deepEqual(s.workerLost('A', 2), [dispatch('r1', 'B')]);
    assert.equal(s.workerOf('r1'), 'B');
    assert.equal(s.hasWorker('A'), false);
  });

  it('cancel of a running request on a base worker frees the slot at once', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    assert.deepEqual(s.cancel('r1', 'client_disconnect', 3), [
      { type: 'cancel', requestId: 'r1', workerId: 'A', reason: 'client_disconnect' },
      dispatch('r2', 'A'),
    ]);
    assert.equal(s.requestState('r1'), undefined);
    assert.deepEqual(s.complete('r1', 'A', 4), [], 'a late completion of the cancelled request does nothing');
    assert.equal(s.requestState('r2'), 'running');
  });

  it('with cancelAck the slot is held until complete() confirms', () => {
    const s = make({ cancelGraceMs: 500 });
    s.registerWorker(worker('A', ['m'], 1, true), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    assert.deepEqual(s.cancel('r1', 'client_disconnect', 10), [{ type: 'cancel', requestId: 'r1', workerId: 'A', reason: 'client_disconnect' }]);
    assert.equal(s.requestState('r1'), 'cancelling');
    assert.equal(s.queueDepth, 1);
    assert.deepEqual(s.cancel('r1', 'client_disconnect', 11), [], 'a second cancel is a no-op');
    assert.deepEqual(s.tick(100), []);
    assert.deepEqual(s.complete('r1', 'A', 200), [dispatch('r2', 'A')]);
    assert.deepEqual(s.tick(10_000), [], 'the grace deadline of a confirmed cancel is stale');
    assert.equal(s.requestState('r2'), 'running');
  });

  it('with cancelAck and no confirmation the slot frees at the cancelGraceMs deadline via tick()', () => {
    const s = make({ cancelGraceMs: 500 });
    s.registerWorker(worker('A', ['m'], 1, true), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    s.cancel('r1', 'client_disconnect', 100);
    assert.equal(s.nextDeadline(), 600);
    assert.deepEqual(s.tick(599), []);
    assert.equal(s.requestState('r1'), 'cancelling');
    assert.deepEqual(s.tick(600), [dispatch('r2', 'A')]);
    assert.equal(s.requestState('r1'), undefined);
    assert.equal(s.ownership('A', 'r1'), 'late');
  });
});

// ---------- unknown model ----------

describe('unknown model', () => {
  it("fails at once with 'model_not_found', naming the model and listing the available ones", () => {
    const s = make();
    s.registerWorker(worker('A', ['llama-3', 'qwen'], 1), 0);
    s.registerWorker(worker('B', ['gemma'], 1), 0);
    const msg = expectFail(s.submit('r1', 'gpt-9', 1), 'r1', 'model_not_found');
    assert.match(msg, /gpt-9/);
    assert.match(msg, /gemma, llama-3, qwen/);
    assert.equal(s.requestState('r1'), undefined);
    assert.equal(s.queueDepth, 0);
  });

  it('says that no worker is connected when there is none', () => {
    const s = make();
    const msg = expectFail(s.submit('r1', 'gpt-9', 1), 'r1', 'model_not_found');
    assert.match(msg, /gpt-9/);
    assert.match(msg, /none/);
  });
});

// ---------- queue timeout ----------

describe('queue timeout', () => {
  it("fails a waiting request with 'queue_timeout' at the deadline, and never dispatches it afterwards", () => {
    const s = make({ queueTimeoutMs: 1000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.submit('r2', 'm', 100);
    assert.equal(s.nextDeadline(), 1100);
    assert.deepEqual(s.tick(1099), []);
    assert.equal(s.requestState('r2'), 'queued');
    const msg = expectFail(s.tick(1100), 'r2', 'queue_timeout');
    assert.match(msg, /'m'/);
    assert.equal(s.queueDepth, 0);
    assert.equal(s.requestState('r2'), undefined);
    assert.deepEqual(s.registerWorker(worker('B', ['m'], 1), 1200), [], 'a worker registering after the timeout');
    assert.deepEqual(s.complete('r1', 'A', 1300), []);
    assert.deepEqual(s.tick(5000), []);
  });

  it('fires late ticks too (tick after the deadline), and a dispatched request is not timed out', () => {
    const s = make({ queueTimeoutMs: 1000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.submit('r2', 'm', 0);
    s.submit('r3', 'm', 500);
    assert.deepEqual(s.complete('r1', 'A', 900), [dispatch('r2', 'A')]);
    // r2's queue deadline (1000) is stale now; r3's (1500) is not.
    expectFail(s.tick(9999), 'r3', 'queue_timeout');
    assert.equal(s.requestState('r2'), 'running');
  });

  it('a requeued request gets a fresh queue deadline: the stale one from its first wait does not fire', () => {
    const s = make({ queueTimeoutMs: 1000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r0', 'm', 0);
    s.submit('r1', 'm', 0); // queued, deadline 1000
    assert.deepEqual(s.complete('r0', 'A', 500), [dispatch('r1', 'A')]);
    s.registerWorker(worker('B', ['m'], 1), 600);
    s.submit('r2', 'm', 600); // B busy
    assert.deepEqual(s.workerLost('A', 900), [], 'r1 requeued, nobody free');
    assert.deepEqual(s.tick(1000), [], 'deadline of the first wait is stale');
    assert.equal(s.requestState('r1'), 'queued');
    expectFail(s.tick(1900), 'r1', 'queue_timeout');
  });

  it('queueTimeoutMs 0 means no queue timeout', () => {
    const s = make({ queueTimeoutMs: 0 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.submit('r2', 'm', 0);
    assert.deepEqual(s.tick(100 * HOUR), []);
    assert.equal(s.requestState('r2'), 'queued');
  });

  it('nextDeadline() reports the earliest deadline of any kind', () => {
    const s = make({ queueTimeoutMs: 1000, requestTimeoutMs: 5000, heartbeatIntervalMs: 3000, heartbeatTimeoutMs: 9000 });
    assert.equal(s.nextDeadline(), undefined);
    s.registerWorker(worker('A', ['m'], 1), 0);
    assert.equal(s.nextDeadline(), 3000, 'first ping');
    s.submit('r1', 'm', 10);
    assert.equal(s.nextDeadline(), 3000);
    s.submit('r2', 'm', 20);
    assert.equal(s.nextDeadline(), 1020, 'queue deadline of r2');
  });
});

// ---------- request timeout ----------

describe('request timeout', () => {
  it("a running request silent for requestTimeoutMs is cancelled ('timeout') and failed ('request_timeout')", () => {
    const s = make({ requestTimeoutMs: 5000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1000);
    s.submit('r2', 'm', 1000);
    assert.equal(s.nextDeadline(), 6000);
    assert.deepEqual(s.tick(5999), []);
    const cmds = s.tick(6000);
    assert.deepEqual(cmds.slice(0, 1), [{ type: 'cancel', requestId: 'r1', workerId: 'A', reason: 'timeout' }]);
    assert.equal(cmds[1]?.type, 'fail');
    assert.ok(cmds[1]?.type === 'fail', JSON.stringify(cmds));
    assert.equal(cmds[1].requestId, 'r1');
    assert.equal(cmds[1].code, 'request_timeout');
    assert.deepEqual(cmds.slice(2), [dispatch('r2', 'A')], 'the slot of a base worker frees at once');
    assert.equal(s.requestState('r1'), undefined);
  });

  it('touch() pushes the idle deadline forward: a stream that keeps sending is never timed out', () => {
    const s = make({ requestTimeoutMs: 5000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.markStarted('r1');
    for (let t = 1000; t <= 120_000; t += 1000) {
      s.touch('r1', t);
      assert.deepEqual(s.tick(t), [], `timed out at ${t} despite chunks`);
    }
    assert.equal(s.requestState('r1'), 'running');
    // The stream goes quiet after its last chunk at 120 s.
    assert.deepEqual(s.tick(124_999), []);
    const cmds = s.tick(125_000);
    assert.deepEqual(
      cmds.map((c) => (c.type === 'fail' ? c.code : c.type)),
      ['cancel', 'request_timeout'],
    );
  });

  it('touches between ticks count too (the deadline is re-armed from the last touch)', () => {
    const s = make({ requestTimeoutMs: 5000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.touch('r1', 4000);
    assert.deepEqual(s.tick(5000), []);
    assert.equal(s.nextDeadline(), 9000);
    assert.deepEqual(s.tick(8999), []);
    assert.equal(only(s.tick(9000), 'fail')[0]?.code, 'request_timeout');
  });

  it('on a cancelAck worker a timed-out request holds its slot until the grace deadline', () => {
    const s = make({ requestTimeoutMs: 5000, cancelGraceMs: 500 });
    s.registerWorker(worker('A', ['m'], 1, true), 0);
    s.submit('r1', 'm', 0);
    s.submit('r2', 'm', 0);
    const cmds = s.tick(5000);
    assert.deepEqual(only(cmds, 'dispatch'), []);
    assert.equal(only(cmds, 'fail')[0]?.code, 'request_timeout');
    assert.equal(s.requestState('r1'), 'cancelling');
    assert.deepEqual(s.tick(5499), []);
    assert.deepEqual(s.tick(5500), [dispatch('r2', 'A')]);
  });

  it('requestTimeoutMs 0 means none', () => {
    const s = make({ requestTimeoutMs: 0 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    assert.deepEqual(s.tick(100 * HOUR), []);
    assert.equal(s.requestState('r1'), 'running');
  });
});

// ---------- cancel of a queued request ----------

describe('cancel of a queued request', () => {
  it('removes it: queueDepth drops and it is never dispatched later', () => {
    const s = make({ queueTimeoutMs: 1000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.submit('r2', 'm', 0);
    s.submit('r3', 'm', 0);
    assert.equal(s.queueDepth, 2);
    assert.deepEqual(s.cancel('r2', 'client_disconnect', 10), []);
    assert.equal(s.queueDepth, 1);
    assert.equal(s.requestState('r2'), undefined);
    assert.deepEqual(s.complete('r1', 'A', 20), [dispatch('r3', 'A')], 'r2 is skipped');
    assert.deepEqual(s.complete('r3', 'A', 30), []);
    assert.deepEqual(s.tick(5000), [], 'no queue_timeout for a cancelled request');
  });

  it('cancelling the only queued request drops its queue, and a new one queues normally', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0);
    s.submit('r2', 'm', 0);
    s.cancel('r2', 'client_disconnect', 1);
    assert.equal(s.queueDepth, 0);
    assert.deepEqual(s.submit('r3', 'm', 2), []);
    assert.deepEqual(s.complete('r1', 'A', 3), [dispatch('r3', 'A')]);
  });

  it('cancel of an unknown id is a no-op', () => {
    const s = make();
    assert.deepEqual(s.cancel('nope', 'client_disconnect', 0), []);
  });
});

// ---------- worker lost ----------

describe('workerLost', () => {
  it('requeues a not-started request at the front, ahead of fresh queued requests', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('r1', 'm', 1); // A
    s.submit('r2', 'm', 1); // B
    s.submit('r3', 'm', 2); // queued
    s.submit('r4', 'm', 3); // queued
    assert.deepEqual(s.workerLost('A', 4), [], 'B is full: r1 waits');
    assert.equal(s.requestState('r1'), 'queued');
    assert.equal(s.queueDepth, 3);
    assert.deepEqual(s.complete('r2', 'B', 5), [dispatch('r1', 'B')]);
    assert.deepEqual(s.complete('r1', 'B', 6), [dispatch('r3', 'B')]);
  });

  it('a requeued request goes ahead of an older fresh request (wildcard worker choosing across models)', () => {
    const s = make();
    s.registerWorker(worker('W', ['*'], 1), 0);
    s.submit('w0', 'Z', 0); // W busy
    s.registerWorker(worker('A', ['X'], 1), 0);
    s.submit('a0', 'X', 1); // A busy
    s.submit('x1', 'X', 2); // queued fresh, older
    s.registerWorker(worker('B', ['Y'], 1), 3);
    assert.deepEqual(s.submit('y2', 'Y', 4), [dispatch('y2', 'B')]);
    assert.deepEqual(s.workerLost('B', 5), []);
    assert.equal(s.requestState('y2'), 'queued');
    assert.deepEqual(s.complete('w0', 'W', 6), [dispatch('y2', 'W')], 'the requeued one goes first');
    assert.deepEqual(s.complete('y2', 'W', 7), [dispatch('x1', 'W')]);
  });

  it("a started request fails with 'worker_lost' and is never dispatched again", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('r1', 'm', 1); // A
    s.markStarted('r1');
    const msg = expectFail(s.workerLost('A', 2), 'r1', 'worker_lost');
    assert.match(msg, /name-A/);
    assert.equal(s.requestState('r1'), undefined);
    assert.deepEqual(s.submit('r2', 'm', 3), [dispatch('r2', 'B')], 'B was left idle; r1 did not go there');
  });

  it('mixes both: started fails, not started moves on', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 1);
    s.markStarted('r2');
    s.registerWorker(worker('B', ['m'], 2), 2);
    const cmds = s.workerLost('A', 3);
    assert.deepEqual(only(cmds, 'dispatch'), [dispatch('r1', 'B')]);
    assert.deepEqual(
      only(cmds, 'fail').map((c) => [c.requestId, c.code]),
      [['r2', 'worker_lost']],
    );
  });

  it("after maxRequeues (3) requeues, the 4th loss fails with 'requeue_exhausted'", () => {
    const s = make({ maxRequeues: 3 });
    let dispatches = 0;
    for (let i = 1; i <= 3; i++) {
      const cmds = s.registerWorker(worker(`W${i}`, ['m'], 1), i * 10);
      if (i === 1) {
        assert.deepEqual(cmds, []);
        assert.deepEqual(s.submit('r1', 'm', 10), [dispatch('r1', 'W1')]);
      } else assert.deepEqual(cmds, [dispatch('r1', `W${i}`)]);
      dispatches++;
      assert.deepEqual(s.workerLost(`W${i}`, i * 10 + 5), [], `loss ${i} requeues`);
      assert.equal(s.requestState('r1'), 'queued');
    }
    assert.deepEqual(s.registerWorker(worker('W4', ['m'], 1), 40), [dispatch('r1', 'W4')]);
    dispatches++;
    expectFail(s.workerLost('W4', 45), 'r1', 'requeue_exhausted');
    assert.equal(dispatches, 4);
    assert.equal(s.requestState('r1'), undefined);
    assert.equal(s.queueDepth, 0);
  });

  it('a cancelling request on a lost worker is simply dropped', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1, true), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('r1', 'm', 1); // A
    s.cancel('r1', 'client_disconnect', 2);
    assert.deepEqual(s.workerLost('A', 3), []);
    assert.equal(s.requestState('r1'), undefined);
    assert.deepEqual(s.submit('r2', 'm', 4), [dispatch('r2', 'B')]);
  });
});

// ---------- requestFailed ----------

describe('slot groups (backend-slots)', () => {
  // One worker, two backends: 'a' has 1 slot, 'b' and 'c' share 2; the worker claims 3.
  const grouped = (s: Scheduler): void => {
    s.registerWorker(worker('W', ['a', 'b', 'c'], 3), 0);
    s.setSlotGroups('W', [{ models: ['a'], maxConcurrent: 1 }, { models: ['b', 'c'], maxConcurrent: 2 }], 0);
  };

  it("a model's group full: its requests wait, the worker's other models still flow", () => {
    const s = make();
    grouped(s);
    assert.deepEqual(s.submit('a1', 'a', 1), [dispatch('a1', 'W')]);
    assert.deepEqual(s.submit('a2', 'a', 1), [], "a's one slot is taken: a2 waits, though W has 2 free");
    assert.deepEqual(s.submit('b1', 'b', 1), [dispatch('b1', 'W')]);
    assert.deepEqual(s.submit('c1', 'c', 1), [dispatch('c1', 'W')]);
    assert.deepEqual(s.submit('b2', 'b', 1), [], 'b and c share 2');
    assert.deepEqual(s.complete('b1', 'W', 2), [dispatch('b2', 'W')], "a freed b slot goes to b's queue, not a's");
    assert.deepEqual(s.complete('a1', 'W', 3), [dispatch('a2', 'W')]);
  });

  it('another worker with room takes what a full group cannot', () => {
    const s = make();
    grouped(s);
    s.registerWorker(worker('V', ['a'], 1), 0);
    const sent = targets([...s.submit('a1', 'a', 1), ...s.submit('a2', 'a', 1), ...s.submit('a3', 'a', 1)]);
    assert.deepEqual(sent.map((t) => t.split('>')[1]).sort(), ['V', 'W'], 'one each: W has one slot for a');
    assert.equal(s.requestState('a3'), 'queued');
  });

  it('an alias goes to the target whose group has room', () => {
    const s = make({}, ['any=a|b']);
    grouped(s);
    assert.deepEqual(s.submit('a1', 'a', 1), [dispatch('a1', 'W')]);
    assert.deepEqual(s.submit('x', 'any', 1), [{ type: 'dispatch', requestId: 'x', workerId: 'W', target: 'b' }]);
  });

  it('groups set while requests run count them; no groups again is one pool', () => {
    const s = make();
    s.registerWorker(worker('W', ['a', 'b'], 3), 0);
    s.submit('a1', 'a', 1);
    s.submit('a2', 'a', 1);
    s.setSlotGroups('W', [{ models: ['a'], maxConcurrent: 1 }, { models: ['b'], maxConcurrent: 2 }], 2);
    assert.deepEqual(s.submit('a3', 'a', 3), [], 'a is over its group already');
    assert.deepEqual(s.submit('b1', 'b', 3), [dispatch('b1', 'W')]);
    assert.deepEqual(s.setSlotGroups('W', [], 4), [], 'one pool of 3 again, all 3 taken');
    assert.deepEqual(s.complete('b1', 'W', 5), [dispatch('a3', 'W')], 'a freed slot of the one pool serves a');
  });

  it("a '*' worker stays one pool", () => {
    const s = make();
    s.registerWorker(worker('W', ['*', 'a'], 2), 0);
    s.setSlotGroups('W', [{ models: ['a'], maxConcurrent: 1 }], 0);
    assert.deepEqual(targets([...s.submit('a1', 'a', 1), ...s.submit('a2', 'a', 1)]), ['a1>W', 'a2>W']);
  });
});

describe('requestFailed', () => {
  it('retryable: requeued elsewhere at once, and the refusing worker is skipped until it reports free load', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    assert.deepEqual(s.submit('r1', 'm', 1), [dispatch('r1', 'A')]);
    assert.deepEqual(s.requestFailed('r1', 'A', true, 'busy', 2), [dispatch('r1', 'B')]);
    assert.equal(s.ownership('A', 'r1'), 'late');
    // A is idle (0/2) but saturated: the next request waits.
    assert.deepEqual(s.submit('r2', 'm', 3), []);
    assert.deepEqual(s.workerLoad('A', 2, 4), [], 'load == maxConcurrent: still full');
    assert.deepEqual(s.workerLoad('A', 1, 5), [dispatch('r2', 'A')]);
  });

  it('retryable: saturation ends when the worker completes a request', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    assert.deepEqual(
      targets([...s.submit('r1', 'm', 1), ...s.submit('r2', 'm', 1), ...s.submit('r3', 'm', 1)]),
      ['r1>A', 'r2>B', 'r3>A'],
    );
    assert.deepEqual(s.requestFailed('r3', 'A', true, 'busy', 2), [], 'B full, A saturated');
    assert.equal(s.requestState('r3'), 'queued');
    assert.deepEqual(s.submit('r4', 'm', 3), [], 'A has a free slot but is saturated');
    assert.deepEqual(s.complete('r1', 'A', 4), [dispatch('r3', 'A'), dispatch('r4', 'A')]);
  });

  it('refusals spend none of --max-requeues: a request refused more often than that still runs', () => {
    const s = make({ maxRequeues: 1 });
    s.registerWorker(worker('A', ['m'], 2), 0);
    assert.deepEqual(targets([...s.submit('hold', 'm', 1), ...s.submit('r', 'm', 1)]), ['hold>A', 'r>A']);
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(s.requestFailed('r', 'A', true, 'busy', 2 + i), [], 'back in the queue, A saturated');
      assert.equal(s.requestState('r'), 'queued');
      assert.deepEqual(s.workerLoad('A', 1, 2 + i), [dispatch('r', 'A')], 'A says it has room again');
    }
    assert.deepEqual(s.complete('r', 'A', 10), []);
  });

  it('a refused request waits --queue-timeout in all, counted from when it first had to wait', () => {
    const s = make({ queueTimeoutMs: 1000 });
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.submit('hold', 'm', 0);
    s.submit('r', 'm', 0);
    s.requestFailed('r', 'A', true, 'busy', 100);
    s.workerLoad('A', 1, 600);
    s.requestFailed('r', 'A', true, 'busy', 700);
    assert.equal(s.requestState('r'), 'queued');
    assert.deepEqual(s.tick(1099), []);
    expectFail(s.tick(1101), 'r', 'queue_timeout');
  });

  it("not retryable: fails with 'backend_error' and frees the slot", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    const cmds = s.requestFailed('r1', 'A', false, 'CUDA out of memory', 3);
    assert.deepEqual(cmds, [{ type: 'fail', requestId: 'r1', code: 'backend_error', message: 'CUDA out of memory' }, dispatch('r2', 'A')]);
  });

  it("retryable after the first byte is not retried: 'backend_error'", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    s.markStarted('r1');
    expectFail(s.requestFailed('r1', 'A', true, 'boom', 2), 'r1', 'backend_error');
    assert.deepEqual(s.submit('r2', 'm', 3), [dispatch('r2', 'B')]);
    assert.deepEqual(s.submit('r3', 'm', 3), [dispatch('r3', 'A')], 'A was not marked saturated');
  });

  it('from a worker that does not own the request is ignored', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    assert.deepEqual(s.requestFailed('r1', 'B', false, 'x', 2), []);
    assert.equal(s.workerOf('r1'), 'A');
  });
});

// ---------- heartbeat ----------

describe('heartbeat', () => {
  it('pings every heartbeatIntervalMs', () => {
    const s = make({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    assert.deepEqual(s.tick(999), []);
    assert.deepEqual(s.tick(1000), [{ type: 'ping', workerId: 'A' }]);
    s.workerSeen('A', 1000);
    assert.deepEqual(s.tick(1999), []);
    assert.deepEqual(s.tick(2000), [{ type: 'ping', workerId: 'A' }]);
  });

  it('a silent worker is closed after heartbeatTimeoutMs and its requests requeued', () => {
    const s = make({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 10); // A
    s.registerWorker(worker('B', ['m'], 1), 500);
    s.workerSeen('B', 2900);
    const before = s.tick(2999);
    assert.deepEqual(only(before, 'close_worker'), []);
    const cmds = s.tick(3000);
    const closes = only(cmds, 'close_worker');
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.workerId, 'A');
    assert.match(closes[0]!.reason, /heartbeat/);
    assert.deepEqual(only(cmds, 'dispatch'), [dispatch('r1', 'B')]);
    assert.equal(s.hasWorker('A'), false);
    assert.equal(s.hasWorker('B'), true);
    assert.equal(s.workerCount, 1);
  });

  it('workerSeen keeps a worker alive indefinitely', () => {
    const s = make({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    let pings = 0;
    for (let t = 500; t <= 100_000; t += 500) {
      s.workerSeen('A', t);
      const cmds = s.tick(t);
      assert.deepEqual(only(cmds, 'close_worker'), [], `closed at ${t}`);
      pings += only(cmds, 'ping').length;
    }
    assert.equal(pings, 100);
    assert.equal(s.hasWorker('A'), true);
    // Then it goes quiet.
    const cmds = s.tick(103_000);
    assert.equal(only(cmds, 'close_worker').length, 1);
  });

  it('stops pinging a worker that is gone', () => {
    const s = make({ heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 3000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.workerLost('A', 10);
    assert.deepEqual(s.tick(10_000), []);
  });
});

// ---------- drain ----------

describe('drain', () => {
  it("at the drain deadline: close_worker, cancel 'graceful_shutdown' for running requests, then like a lost worker", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 1);
    s.markStarted('r1');
    s.registerWorker(worker('B', ['m'], 1), 2);
    assert.deepEqual(s.drainWorker('A', 100, 5000), []);
    assert.deepEqual(s.drainWorker('A', 101, 1), [], 'draining twice is a no-op');
    assert.equal(s.nextDeadline(), 5100);
    assert.deepEqual(s.tick(5099), []);
    const cmds = s.tick(5100);
    const close = only(cmds, 'close_worker');
    assert.equal(close.length, 1);
    assert.equal(close[0]!.workerId, 'A');
    assert.deepEqual(
      only(cmds, 'cancel').map((c) => [c.requestId, c.workerId, c.reason]),
      [
        ['r1', 'A', 'graceful_shutdown'],
        ['r2', 'A', 'graceful_shutdown'],
      ],
    );
    assert.deepEqual(only(cmds, 'fail').map((c) => [c.requestId, c.code]), [['r1', 'worker_lost']]);
    // r2 had not started: it is retried on B rather than failed.
    assert.deepEqual(only(cmds, 'dispatch'), [dispatch('r2', 'B')]);
    assert.equal(s.hasWorker('A'), false);
  });

  // The relay carries commands out in order and its close_worker drops the session, so a cancel that
  // came after it would go nowhere.
  it('at the drain deadline the cancels are emitted before close_worker, so they can still be sent', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.submit('r1', 'm', 1);
    s.markStarted('r1');
    s.drainWorker('A', 100, 5000);
    const kinds = s.tick(5100).map((c) => c.type);
    assert.ok(kinds.includes('cancel') && kinds.includes('close_worker'), kinds.join());
    assert.ok(kinds.indexOf('cancel') < kinds.indexOf('close_worker'), `order was ${kinds.join(', ')}`);
  });

  it('isDrained() once in-flight is empty; a drain without timeout never closes the worker', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.submit('r1', 'm', 1);
    s.registerWorker(worker('I', ['other'], 1), 0);
    assert.equal(s.isDrained('I'), false, 'an idle worker that is not draining is not drained');
    assert.equal(s.isDrained('A'), false, 'not draining yet');
    s.drainWorker('A', 2);
    assert.equal(s.isDrained('A'), false, 'r1 in flight');
    assert.equal(s.workerList()[0]!.draining, true);
    assert.deepEqual(s.submit('r2', 'm', 3), [], 'nothing new for a draining worker');
    assert.deepEqual(s.complete('r1', 'A', 4), []);
    assert.equal(s.isDrained('A'), true);
    assert.deepEqual(only(s.tick(100 * HOUR), 'close_worker'), []);
    assert.equal(s.isDrained('nope'), false);
  });

  it('a drain deadline is moot once the worker left', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.drainWorker('A', 0, 1000);
    s.workerLost('A', 500);
    assert.deepEqual(s.tick(1000), []);
  });
});

// ---------- ownership ----------

describe('ownership', () => {
  it("'active' for its running request, 'late' once finished, 'foreign' for others' requests and unknown ids", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.registerWorker(worker('B', ['m'], 2), 0);
    s.submit('r1', 'm', 1); // A
    s.submit('r2', 'm', 1); // B
    assert.equal(s.ownership('A', 'r1'), 'active');
    assert.equal(s.ownership('B', 'r1'), 'foreign');
    assert.equal(s.ownership('A', 'r2'), 'foreign');
    assert.equal(s.ownership('A', 'nope'), 'foreign');
    assert.equal(s.ownership('ghost', 'r1'), 'foreign');
    s.complete('r1', 'A', 2);
    assert.equal(s.ownership('A', 'r1'), 'late');
    assert.equal(s.ownership('B', 'r1'), 'foreign');
    s.cancel('r2', 'client_disconnect', 3);
    assert.equal(s.ownership('B', 'r2'), 'late', 'cancelled on a base worker');
  });

  it("'late' while a cancel-ack worker is still confirming the cancel", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1, true), 0);
    s.submit('r1', 'm', 1);
    s.cancel('r1', 'client_disconnect', 2);
    assert.equal(s.ownership('A', 'r1'), 'late');
  });

  it("'late' for the worker a request was moved away from", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('r1', 'm', 1); // A
    s.requestFailed('r1', 'A', true, 'busy', 2); // → B
    assert.equal(s.ownership('A', 'r1'), 'late');
    assert.equal(s.ownership('B', 'r1'), 'active');
  });
});

// ---------- shutdown ----------

describe('stopAccepting', () => {
  it("fails queued requests with 'shutting_down' and refuses new submits, leaving running ones alone", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 2);
    s.submit('r3', 'm', 3);
    const cmds = s.stopAccepting();
    assert.deepEqual(
      cmds.map((c) => (c.type === 'fail' ? [c.requestId, c.code] : c.type)),
      [
        ['r2', 'shutting_down'],
        ['r3', 'shutting_down'],
      ],
    );
    assert.equal(s.queueDepth, 0);
    assert.equal(s.requestState('r1'), 'running');
    expectFail(s.submit('r4', 'm', 4), 'r4', 'shutting_down');
    assert.equal(s.requestState('r4'), undefined);
    assert.deepEqual(s.complete('r1', 'A', 5), []);
    assert.equal(s.inFlightCount, 0);
  });
});

// ---------- property-style random test ----------


type Outcome = 'completed' | 'failed' | 'cancelled';

/**
 * Drives the scheduler with random events and keeps its own model of where each request runs, built
 * only from the commands that came out. It asserts safety on every command and liveness at the end.
 */
function randomRun(seed: number, steps: number, routingMode: RoutingConfig['mode'] = 'cache-aware'): void {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T | undefined => (xs.length ? xs[Math.floor(rnd() * xs.length)] : undefined);
  // Aliases: one over two served models, one whose second target no worker ever serves.
  const ALIASES = ModelAliases.parse(['x=a|b', 'y=c|zz']);
  const raw = new Scheduler({
    maxQueueLen: 12,
    queueTimeoutMs: 3000,
    requestTimeoutMs: 4000,
    heartbeatIntervalMs: 1000,
    heartbeatTimeoutMs: 3000,
    maxRequeues: 3,
    cancelGraceMs: 500,
    breakerFailures: 2,
    breakerCooldownMs: 700,
    priorityAgingMs: 1500,
  }, ALIASES, { mode: routingMode, maxEntries: 24, loadFactor: 1.5 });
  const s = checked(raw); // events go through the invariant check; the harness's own look-ups use `raw`
  const MODELS = ['a', 'b', 'c'];
  const specs = new Map<string, WorkerSpec>(); // connected workers, as far as the harness knows
  const seenProb = new Map<string, number>(); // some workers go (nearly) silent and hit the heartbeat timeout
  const draining = new Set<string>();
  /** request → worker holding its slot (running, or cancelling on a cancel-ack worker). */
  const slot = new Map<string, string>();
  const outcome = new Map<string, Outcome>();
  const started = new Set<string>();
  const submitted: string[] = [];
  const pending = new Set<string>(); // submitted and not yet gone from the scheduler
  const dispatchCount = new Map<string, number>();
  /** Busy refusals per request: they spend no requeue, so they allow a dispatch more each. */
  const refusals = new Map<string, number>();
  /** Slot groups the harness gave each worker: model → [group id, its slots]. */
  const groupsOf = new Map<string, Map<string, [number, number]>>();
  /** request → the model its worker runs it as. */
  const servedAsOf = new Map<string, string>();
  const asked = new Map<string, string>(); // request → the model or alias it named
  let now = 0;
  let nextReq = 0;
  let nextWorker = 0;

  const ctx = (): string => `seed ${seed}, t=${now}`;
  const end = (id: string, o: Outcome): void => {
    assert.equal(outcome.get(id), undefined, `${id} ended twice (${outcome.get(id)} then ${o}) ${ctx()}`);
    outcome.set(id, o);
  };
  const dropWorker = (w: string): void => {
    specs.delete(w);
    draining.delete(w);
    for (const [r, ww] of slot) if (ww === w) slot.delete(r);
  };
  const apply = (cmds: Command[]): void => {
    for (const c of cmds) {
      switch (c.type) {
        case 'dispatch': {
          const spec = specs.get(c.workerId);
          assert.ok(spec, `dispatch ${c.requestId} to unknown worker ${c.workerId} ${ctx()}`);
          assert.ok(!draining.has(c.workerId), `dispatch to draining ${c.workerId} ${ctx()}`);
          assert.equal(outcome.get(c.requestId), undefined, `dispatch of ended ${c.requestId} ${ctx()}`);
          assert.ok(!slot.has(c.requestId), `${c.requestId} dispatched twice concurrently ${ctx()}`);
          assert.ok(!started.has(c.requestId), `started ${c.requestId} dispatched again ${ctx()}`);
          // Sent only to a worker that serves what was asked for (for an alias: as one of its targets).
          const name = asked.get(c.requestId)!;
          const alias = ALIASES.get(name);
          assert.equal(c.target !== undefined, alias !== undefined, `target given iff an alias was asked for ${ctx()}`);
          if (alias) assert.ok(alias.targets.includes(c.target!), `${c.target} is not a target of ${name} ${ctx()}`);
          const servedAs = c.target ?? name;
          assert.ok(spec.models.includes(servedAs) || spec.models.includes('*'), `${c.requestId} (${servedAs}) sent to ${c.workerId} serving ${spec.models.join(',')} ${ctx()}`);
          if (alias && !spec.models.includes('*') && !groupsOf.has(c.workerId)) assert.equal(c.target, alias.targets.find((t) => spec.models.includes(t)), `the first target the worker serves ${ctx()}`);
          slot.set(c.requestId, c.workerId);
          servedAsOf.set(c.requestId, servedAs);
          // A cancel-ack grace expiry in the same tick frees its slot silently before this dispatch.
          for (const [r, w] of slot) if (w === c.workerId && outcome.has(r) && raw.requestState(r) === undefined) slot.delete(r);
          const load = [...slot.values()].filter((w) => w === c.workerId).length;
          assert.ok(load <= spec.maxConcurrent, `${c.workerId} over capacity ${ctx()}`);
          // Within its slot group too (backend-slots), as far as the request's model has one.
          const group = groupsOf.get(c.workerId)?.get(servedAs);
          if (group) {
            const inGroup = [...slot].filter(([r, w]) => w === c.workerId && groupsOf.get(w)?.get(servedAsOf.get(r)!)?.[0] === group[0]).length;
            assert.ok(inGroup <= group[1], `${c.workerId} over its slot group for ${servedAs} (${inGroup} > ${group[1]}) ${ctx()} ${JSON.stringify([...slot].filter(([, w]) => w === c.workerId).map(([r]) => [r, servedAsOf.get(r), raw.requestState(r), outcome.get(r)]))}`);
          }
          dispatchCount.set(c.requestId, (dispatchCount.get(c.requestId) ?? 0) + 1);
          assert.ok(dispatchCount.get(c.requestId)! <= 4 + (refusals.get(c.requestId) ?? 0), `${c.requestId} dispatched more than 1 + maxRequeues times (refusals aside) ${ctx()}`);
          break;
        }
        case 'fail':
          end(c.requestId, 'failed');
          break;
        case 'cancel':
          assert.equal(slot.get(c.requestId), c.workerId, `cancel sent to a worker not holding ${c.requestId} ${ctx()}`);
          break;
        case 'close_worker':
          assert.ok(specs.has(c.workerId), `close of unknown worker ${c.workerId} ${ctx()}`);
          dropWorker(c.workerId);
          break;
        case 'ping':
          assert.ok(specs.has(c.workerId), `ping to unknown worker ${c.workerId} ${ctx()}`);
          break;
      }
    }
  };
  /** Cross-check the harness model against the scheduler's views after every step. */
  const sync = (): void => {
    raw.checkInvariants();
    for (const [r, w] of slot) {
      const st = raw.requestState(r);
      if (st === undefined) {
        // Freed silently: a confirmed/expired cancel. Only an already-ended request may do that.
        assert.ok(outcome.has(r), `${r} vanished without an outcome ${ctx()}`);
        slot.delete(r);
        continue;
      }
      assert.equal(raw.workerOf(r), w, `${r} runs on ${raw.workerOf(r)}, harness says ${w} ${ctx()}`);
      assert.equal(st === 'cancelling', outcome.has(r), `${r} is ${st} but outcome ${outcome.get(r)} ${ctx()}`);
    }
    for (const r of pending) {
      const st = raw.requestState(r);
      if (outcome.has(r)) {
        assert.ok(st === undefined || st === 'cancelling', `ended ${r} still ${st} ${ctx()}`);
        if (st === undefined) pending.delete(r);
      } else {
        assert.ok(st !== undefined, `${r} vanished without an outcome ${ctx()}`);
        assert.equal(st === 'queued', !slot.has(r), `${r} is ${st}, harness slot ${slot.get(r)} ${ctx()}`);
      }
    }
    const load = new Map<string, number>();
    for (const w of slot.values()) load.set(w, (load.get(w) ?? 0) + 1);
    for (const v of raw.workerList()) assert.equal(v.inFlight, load.get(v.id) ?? 0, `in-flight of ${v.id} ${ctx()}`);
    assert.deepEqual(raw.workerList().map((v) => v.id).sort(), [...specs.keys()].sort(), `worker set ${ctx()}`);
    assert.equal(raw.inFlightCount, slot.size);
  };
  const live = (): string[] => [...slot.keys()].filter((r) => !outcome.has(r));
  const anyWorker = (): string | undefined => pick([...specs.keys()]);

  const register = (): void => {
    const id = `w${nextWorker++}`;
    const models = rnd() < 0.2 ? ['*'] : MODELS.filter(() => rnd() < 0.5);
    if (models.length === 0) models.push(pick(MODELS)!);
    const spec = worker(id, models, 1 + Math.floor(rnd() * 3), rnd() < 0.4);
    specs.set(id, spec);
    seenProb.set(id, rnd() < 0.25 ? 0.02 : 0.9);
    apply(s.registerWorker(spec, now));
    // Some workers have several backends: their models split into slot groups of 1-2 slots.
    if (!models.includes('*') && models.length > 1 && rnd() < 0.4) {
      const groups = new Map<string, [number, number]>();
      const specsOut: { models: string[]; maxConcurrent: number }[] = [];
      models.forEach((m, i) => {
        const gi = i % 2;
        if (!specsOut[gi]) specsOut[gi] = { models: [], maxConcurrent: 1 + Math.floor(rnd() * 2) };
        specsOut[gi]!.models.push(m);
        groups.set(m, [gi, specsOut[gi]!.maxConcurrent]);
      });
      groupsOf.set(id, groups);
      apply(s.setSlotGroups(id, specsOut, now));
    }
  };
  register();
  register();

  for (let step = 0; step < steps; step++) {
    now += Math.floor(rnd() * 200);
    // Most workers answer pings most of the time; some go silent.
    for (const w of specs.keys()) if (rnd() < seenProb.get(w)!) raw.workerSeen(w, now); // a timestamp write; checked in sync()
    const x = rnd();
    if (x < 0.3) {
      const id = `r${nextReq++}`;
      submitted.push(id);
      pending.add(id);
      const y = rnd();
      const model = y < 0.03 ? 'unknown' : y < 0.25 ? pick(['x', 'y'])! : pick(MODELS)!;
      asked.set(id, model);
      const tenant = pick(['t1', 't2', 't3', 't4'])!;
      // Six conversations a few turns deep (a turn's prefix extends the one before), some with an
      // affinity key; some requests carry nothing to route by.
      const conv = Math.floor(rnd() * 6);
      const turns = 1 + Math.floor(rnd() * 4);
      const routing: RoutingHints | undefined = rnd() < 0.15 ? undefined : { prefix: Array.from({ length: turns }, (_, t) => conv * 100 + t), ...(rnd() < 0.3 ? { affinity: 9000 + conv } : {}) };
      // t1 and t2 are keys with an in-flight limit; the others have none.
      apply(s.submit(id, model, now, { tenant, priority: pick(['high', 'normal', 'normal', 'low'] as const)!, tenantLimit: tenant === 't1' ? 1 : tenant === 't2' ? 2 : 0, routing }));
    } else if (x < 0.45) {
      const r = pick([...slot.keys()]); // running or cancelling
      if (r) {
        const w = slot.get(r)!;
        if (!outcome.has(r)) end(r, 'completed');
        slot.delete(r);
        apply(s.complete(r, w, now));
      }
    } else if (x < 0.52) {
      const r = pick([...pending].filter((id) => !outcome.has(id)));
      if (r) {
        end(r, 'cancelled');
        const held = slot.get(r);
        const cmds = s.cancel(r, 'client_disconnect', now);
        if (held) assert.deepEqual(cmds[0], { type: 'cancel', requestId: r, workerId: held, reason: 'client_disconnect' });
        else assert.deepEqual(cmds, [], 'cancel of a queued request sends nothing');
        apply(cmds.slice(held ? 1 : 0));
        if (held && !specs.get(held)!.cancelAck) slot.delete(r); // freed at once: sync() checks it
      }
    } else if (x < 0.56) {
      if (specs.size < 6) register();
    } else if (x < 0.59) {
      const w = anyWorker();
      if (w) {
        const cmds = s.workerLost(w, now);
        dropWorker(w);
        apply(cmds);
      }
    } else if (x < 0.75) {
      apply(s.tick(now));
    } else if (x < 0.85) {
      const r = pick(live());
      if (r) s.touch(r, now);
    } else if (x < 0.9) {
      const r = pick(live());
      if (r) {
        s.markStarted(r);
        started.add(r);
      }
    } else if (x < 0.93) {
      const r = pick(live());
      if (r) {
        const w = slot.get(r)!;
        slot.delete(r);
        const y = rnd();
        if (y < 0.5) {
          const retry = rnd() < 0.7;
          if (retry && !started.has(r)) refusals.set(r, (refusals.get(r) ?? 0) + 1);
          apply(s.requestFailed(r, w, retry, 'backend says no', now));
        }
        else if (y < 0.75) apply(s.backendUnavailable(r, w, 'the backend is unreachable (ECONNREFUSED)', now));
        else {
          // A relay-side failure answered as a status: counts against the worker's breaker.
          if (!outcome.has(r)) end(r, 'completed');
          apply(s.complete(r, w, now, 'backend_failure'));
        }
      }
    } else if (x < 0.935) {
      const w = anyWorker();
      if (w) apply(s.backendState(w, rnd() < 0.6, 'down for a while', now));
    } else if (x < 0.95) {
      const w = anyWorker();
      if (w) apply(s.workerLoad(w, Math.floor(rnd() * 3), now));
    } else if (x < 0.97) {
      const w = anyWorker();
      if (w) {
        const models = rnd() < 0.2 ? ['*'] : MODELS.filter(() => rnd() < 0.5);
        specs.get(w)!.models = models;
        // A `*` worker is one pool from its update on; any other keeps its groups until it sends
        // new ones, which a worker with several backends does with every change of models: here,
        // none any more (one pool), as the harness can't tell which backend kept which model.
        if (models.includes('*')) groupsOf.delete(w);
        apply(s.updateModels(w, models, now));
        if (groupsOf.delete(w)) apply(s.setSlotGroups(w, [], now));
      }
    } else if (x < 0.98) {
      const w = anyWorker();
      if (w && specs.size > 1) {
        draining.add(w);
        apply(s.drainWorker(w, now, rnd() < 0.5 ? 2000 : undefined));
      }
    } else {
      // Noise: messages from the wrong worker or about unknown ids change nothing.
      const r = pick(submitted);
      const w = anyWorker();
      if (r && w && slot.get(r) !== w) {
        assert.deepEqual(s.complete(r, w, now), []);
        assert.deepEqual(s.requestFailed(r, w, true, 'x', now), []);
        assert.notEqual(s.ownership(w, r), 'active');
      }
      assert.deepEqual(s.complete('no-such-request', 'no-such-worker', now), []);
    }
    sync();
  }

  // Wind down: no new work, finish everything still held, and every request must have ended exactly once.
  apply(s.stopAccepting());
  sync();
  for (let guard = 0; slot.size > 0 || s.queueDepth > 0; guard++) {
    assert.ok(guard < 10_000, `did not wind down ${ctx()}`);
    const [r, w] = [...slot.entries()][0] ?? [];
    if (r && w) {
      if (!outcome.has(r)) end(r, 'completed');
      slot.delete(r);
      for (const ww of specs.keys()) s.workerSeen(ww, now);
      apply(s.complete(r, w, now));
    } else {
      now += 1000; // only requeued-after-shutdown requests left: let them time out
      apply(s.tick(now));
    }
    sync();
  }
  for (const id of submitted) assert.ok(outcome.has(id), `${id} never reached an outcome ${ctx()}`);
  assert.equal(outcome.size, submitted.length);
  assert.equal(s.inFlightCount, 0);
  assert.equal(s.queueDepth, 0);
  // Sanity: the run exercised every path.
  const counts = { completed: 0, failed: 0, cancelled: 0 };
  for (const o of outcome.values()) counts[o]++;
  assert.ok(counts.completed > 0 && counts.failed > 0 && counts.cancelled > 0, JSON.stringify(counts));
}

describe('property: random event sequences', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 2,000 random events keep the invariants and end every request exactly once (cache-aware routing)`, () => {
      randomRun(seed, 2000);
    });
  }
  it('seed 4: the same with least-loaded routing', () => {
    randomRun(4, 2000, 'least-loaded');
  });
});

// ---------- backend health and the circuit breaker ----------

describe('backend health', () => {
  it('a backend unavailable before any byte: the worker leaves rotation and the request goes to a healthy worker', () => {
    const s = make();
    s.registerWorker(worker('sick', ['m'], 2), 0);
    s.registerWorker(worker('well', ['m'], 2), 0);
    assert.deepEqual(s.submit('r1', 'm', 1), [dispatch('r1', 'sick')]);
    assert.deepEqual((s.backendState('sick', false, 'unreachable (ECONNREFUSED)', 2), s.backendUnavailable('r1', 'sick', 'unreachable (ECONNREFUSED)', 2)), [dispatch('r1', 'well')]);
    // While down it gets nothing, even with free slots and the healthy one full.
    assert.deepEqual(s.submit('r2', 'm', 3), [dispatch('r2', 'well')]);
    assert.deepEqual(s.submit('r3', 'm', 3), [], 'queued for the healthy worker, not sent to the sick one');
    assert.equal(s.workerList().find((w) => w.id === 'sick')!.backendDown, true);
    // Back up: it takes the waiting request at once.
    assert.deepEqual(s.backendState('sick', true, '', 4), [dispatch('r3', 'sick')]);
  });

  it('the slot a backend-unavailable request frees takes the next waiting request at once', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 1);
    s.submit('r2', 'm', 1);
    s.markStarted('r1');
    const cmds = s.backendUnavailable('r1', 'A', 'the backend reset the connection', 2);
    assert.deepEqual(cmds.map((c) => (c.type === 'fail' ? `fail ${c.requestId} ${c.code}` : c.type === 'dispatch' ? `${c.requestId}>${c.workerId}` : c.type)), ['fail r1 backend_error', 'r2>A']);
  });

  it('with no healthy worker for the model, the client gets the backend error with its reason', () => {
    const s = make();
    s.registerWorker(worker('sick', ['m'], 2), 0);
    s.registerWorker(worker('other-model', ['n'], 2), 0);
    s.submit('r1', 'm', 1);
    const msg = expectFail((s.backendState('sick', false, 'down', 2), s.backendUnavailable('r1', 'sick', 'The backend at http://x is unreachable (ECONNREFUSED).', 2)), 'r1', 'backend_unreachable');
    assert.match(msg, /unreachable \(ECONNREFUSED\)\. No other worker serving 'm' has a working backend\./);
  });

  it('a worker that reports its backend down gets nothing; with no healthy worker left, requests fail at once with the reason', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    assert.deepEqual(s.backendState('A', false, 'the backend is not ready (503: Loading model)', 1), []);
    assert.match(expectFail(s.submit('r1', 'm', 2), 'r1', 'backend_unreachable'), /A: the backend is not ready \(503: Loading model\)\./);
    assert.equal(s.queueDepth, 0, 'nothing waits out the queue timeout for a worker that cannot serve it');
    assert.deepEqual(s.backendState('A', false, 'still loading', 3), [], 'no change, no commands');
    assert.deepEqual(s.backendState('A', true, '', 4), []);
    assert.deepEqual(s.submit('r2', 'm', 5), [dispatch('r2', 'A')]);
  });
});

describe('circuit breaker', () => {
  it('opens after N backend failures in a row, probes with one request after the cool-down, closes on success', () => {
    const s = make({ breakerFailures: 3, breakerCooldownMs: 1000 });
    // A healthy worker that is busy, so that requests wait while the flaky one is skipped.
    s.registerWorker(worker('busy', ['m'], 1), 0);
    s.submit('long', 'm', 0);
    s.registerWorker(worker('flaky', ['m'], 4), 0);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(s.submit(`f${i}`, 'm', 1), [dispatch(`f${i}`, 'flaky')]);
      s.complete(`f${i}`, 'flaky', 1, 'backend_failure');
    }
    const flaky = (): { breaker: string } => s.workerList().find((w) => w.id === 'flaky')!;
    assert.equal(flaky().breaker, 'open');
    assert.deepEqual(s.submit('q1', 'm', 2), [], 'open: skipped');
    assert.deepEqual(s.submit('q2', 'm', 2), []);
    assert.deepEqual(s.tick(500), [], 'still cooling down');
    // Half open: exactly one probe, though it has four slots.
    assert.deepEqual(s.tick(1001), [dispatch('q1', 'flaky')]);
    assert.equal(flaky().breaker, 'half_open');
    assert.deepEqual(s.complete('q1', 'flaky', 1002, 'ok'), [dispatch('q2', 'flaky')], 'closed again: the queue drains');
    assert.equal(flaky().breaker, 'closed');
  });

  it('a failed probe reopens it for twice as long; successes in between reset the count', () => {
    const s = make({ breakerFailures: 2, breakerCooldownMs: 1000 });
    s.registerWorker(worker('busy', ['m'], 1), 0);
    s.submit('long', 'm', 0);
    s.registerWorker(worker('w', ['m'], 1), 0);
    s.submit('a', 'm', 0);
    s.complete('a', 'w', 0, 'backend_failure');
    s.submit('b', 'm', 0);
    s.complete('b', 'w', 0, 'ok');
    s.submit('c', 'm', 0);
    s.complete('c', 'w', 0, 'backend_failure');
    assert.equal(s.workerList().find((x) => x.id === 'w')!.breaker, 'closed', 'a success in between resets the count');
    s.submit('d', 'm', 0);
    s.complete('d', 'w', 10, 'backend_failure');
    assert.equal(s.workerList().find((x) => x.id === 'w')!.breaker, 'open');
    s.submit('p1', 'm', 20);
    assert.deepEqual(s.tick(1010), [dispatch('p1', 'w')]);
    s.complete('p1', 'w', 1020, 'backend_failure');
    assert.equal(s.workerList().find((x) => x.id === 'w')!.breaker, 'open');
    s.submit('p2', 'm', 1030);
    assert.deepEqual(s.tick(2019), [], 'the second cool-down is twice as long');
    assert.deepEqual(s.tick(3021), [dispatch('p2', 'w')]);
  });

  it('a worker whose backend was reported down and then up is in rotation at once, whatever failed meanwhile', () => {
    const s = make({ breakerFailures: 2, breakerCooldownMs: 10_000 });
    s.registerWorker(worker('w', ['m'], 2), 0);
    // Failures before the worker noticed: they open the breaker.
    for (const id of ['a', 'b']) {
      assert.deepEqual(s.submit(id, 'm', 1), [dispatch(id, 'w')]);
      s.complete(id, 'w', 1, 'backend_failure');
    }
    assert.equal(s.workerList()[0]!.breaker, 'open');
    s.backendState('w', false, 'unreachable', 2);
    assert.deepEqual(s.backendState('w', true, '', 3), []);
    assert.equal(s.workerList()[0]!.breaker, 'closed', 'the health report supersedes the breaker');
    assert.deepEqual(s.submit('c', 'm', 4), [dispatch('c', 'w')], 'not kept out for the cool-down');
  });

  it('a failure explained by a down report does not count against the breaker', () => {
    const s = make({ breakerFailures: 1, breakerCooldownMs: 10_000 });
    s.registerWorker(worker('w', ['m'], 2), 0);
    assert.deepEqual(s.submit('a', 'm', 1), [dispatch('a', 'w')]);
    s.backendState('w', false, 'unreachable', 2);
    expectFail(s.backendUnavailable('a', 'w', 'unreachable', 2), 'a', 'backend_unreachable');
    assert.equal(s.workerList()[0]!.breaker, 'closed');
  });

  it('failing fast never shows capacity: only successful completions count as proven', () => {
    const s = make();
    s.registerWorker(worker('fast-fail', ['m'], 8), 0);
    for (let i = 0; i < 8; i++) s.submit(`x${i}`, 'm', 0);
    for (let i = 0; i < 8; i++) s.complete(`x${i}`, 'fast-fail', 0, 'backend_failure');
    assert.equal(s.workerList()[0]!.proven, 0);
    for (let i = 0; i < 3; i++) s.submit(`y${i}`, 'm', 0);
    for (let i = 0; i < 3; i++) s.complete(`y${i}`, 'fast-fail', 0, 'ok');
    assert.equal(s.workerList()[0]!.proven, 3);
  });
});

// ---------- model aliases ----------

describe('model aliases', () => {
  it('a request for an alias runs on the workers of all its targets, each told its target', () => {
    const s = make({}, ['gpt-4o-mini=qwen|llama']);
    s.registerWorker(worker('Q', ['qwen'], 2), 0);
    s.registerWorker(worker('L', ['llama'], 2), 0);
    const cmds = [1, 2, 3, 4].flatMap((i) => s.submit(`r${i}`, 'gpt-4o-mini', i));
    assert.deepEqual(cmds, [dispatchAs('r1', 'Q', 'qwen'), dispatchAs('r2', 'L', 'llama'), dispatchAs('r3', 'Q', 'qwen'), dispatchAs('r4', 'L', 'llama')]);
    // A plain request for a target is no alias request: no target in its dispatch.
    s.complete('r1', 'Q', 5);
    assert.deepEqual(s.submit('p1', 'qwen', 6), [dispatch('p1', 'Q')]);
  });

  it('a target with no worker is skipped; with none served, 404 naming the alias and its targets', () => {
    const s = make({}, ['chat=gone|qwen', 'code=a|b']);
    s.registerWorker(worker('Q', ['qwen'], 1), 0);
    assert.deepEqual(s.submit('r1', 'chat', 1), [dispatchAs('r1', 'Q', 'qwen')]);
    assert.ok(s.serves('chat'));
    assert.ok(!s.serves('code'));
    const msg = expectFail(s.submit('r2', 'code', 2), 'r2', 'model_not_found');
    assert.match(msg, /The model 'code' is an alias of a, b; no connected worker serves any of them\. Available models: qwen\./);
    assert.equal(s.notServedMessage('code'), msg);
  });

  it('a queued alias request runs on the first worker of any target that frees a slot, in arrival order with the targets\' own requests', () => {
    const s = make({}, ['x=a|b']);
    s.registerWorker(worker('A', ['a'], 1), 0);
    s.registerWorker(worker('B', ['b'], 1), 0);
    s.submit('busyA', 'a', 0);
    s.submit('busyB', 'b', 0);
    s.submit('plainA', 'a', 1);
    s.submit('alias1', 'x', 2);
    s.submit('plainB', 'b', 3);
    s.submit('alias2', 'x', 4);
    assert.equal(s.queuePosition('alias2'), 2, 'aliases wait in their own queue');
    assert.deepEqual(s.complete('busyB', 'B', 5), [dispatchAs('alias1', 'B', 'b')], 'older than plainB');
    assert.deepEqual(s.complete('busyA', 'A', 6), [dispatch('plainA', 'A')], 'older than alias2');
    assert.deepEqual(s.complete('alias1', 'B', 7), [dispatch('plainB', 'B')]);
    assert.deepEqual(s.complete('plainA', 'A', 8), [dispatchAs('alias2', 'A', 'a')]);
    // A worker that connects later for a target takes queued alias work too.
    s.submit('alias3', 'x', 9);
    assert.deepEqual(s.registerWorker(worker('B2', ['b'], 1), 10), [dispatchAs('alias3', 'B2', 'b')]);
  });

  it("falls over when a target's last worker leaves: its unstarted requests run as another target", () => {
    const s = make({}, ['x=a|b']);
    s.registerWorker(worker('A', ['a'], 1), 0);
    s.registerWorker(worker('B', ['b'], 2), 0);
    assert.deepEqual(s.submit('r1', 'x', 1), [dispatchAs('r1', 'A', 'a')]);
    assert.deepEqual(s.workerLost('A', 2), [dispatchAs('r1', 'B', 'b')]);
    assert.deepEqual(s.submit('r2', 'x', 3), [dispatchAs('r2', 'B', 'b')]);
    // Every target's workers gone: they wait (as for a plain model) for a worker of any target.
    assert.deepEqual(s.workerLost('B', 4), []);
    assert.equal(s.queueDepth, 2);
    assert.deepEqual(s.registerWorker(worker('A2', ['a'], 2), 5), [dispatchAs('r1', 'A2', 'a'), dispatchAs('r2', 'A2', 'a')]);
  });

  it('a worker serving several targets serves the first listed; a * worker the first target', () => {
    const s = make({}, ['x=a|b']);
    s.registerWorker(worker('AB', ['b', 'a'], 1), 0);
    assert.deepEqual(s.submit('r1', 'x', 1), [dispatchAs('r1', 'AB', 'a')]);
    const t = make({}, ['x=a|b']);
    t.registerWorker(worker('W', ['*'], 1), 0);
    assert.deepEqual(t.submit('r1', 'x', 1), [dispatchAs('r1', 'W', 'a')]);
  });

  it('an alias hides a worker model of its name, unless it lists itself', () => {
    const s = make({}, ['m=other']);
    s.registerWorker(worker('M', ['m'], 1), 0);
    expectFail(s.submit('r1', 'm', 1), 'r1', 'model_not_found');
    const t = make({}, ['m=m|other']);
    t.registerWorker(worker('M', ['m'], 1), 0);
    t.registerWorker(worker('O', ['other'], 1), 0);
    assert.deepEqual([...t.submit('r1', 'm', 1), ...t.submit('r2', 'm', 1)], [dispatchAs('r1', 'M', 'm'), dispatchAs('r2', 'O', 'other')]);
  });

  it('backend trouble is judged over all targets', () => {
    const s = make({}, ['x=a|b']);
    s.registerWorker(worker('A', ['a'], 1), 0);
    s.registerWorker(worker('B', ['b'], 1), 0);
    s.backendState('A', false, 'down', 1);
    assert.deepEqual(s.submit('r1', 'x', 2), [dispatchAs('r1', 'B', 'b')]);
    // B's backend fails before a byte: A is down too, so nobody healthy is left.
    s.backendState('B', false, 'down too', 3);
    assert.match(expectFail(s.backendUnavailable('r1', 'B', 'unreachable', 3), 'r1', 'backend_unreachable'), /No other worker serving 'x'/);
    assert.match(expectFail(s.submit('r2', 'x', 4), 'r2', 'backend_unreachable'), /No worker serving 'x' has a working backend: name-A: down\./);
  });

  it('alias definitions: parsed, and refused with the entry named', () => {
    const a = ModelAliases.parse(['gpt-4o-mini = qwen | llama | qwen', '', 'embed=nomic']);
    assert.deepEqual(a.get('gpt-4o-mini')?.targets, ['qwen', 'llama']);
    assert.deepEqual(a.listing('qwen').map((x) => x.name), ['gpt-4o-mini']);
    assert.deepEqual(a.listing('nothing'), []);
    assert.throws(() => ModelAliases.parse(['x']), /'x' must be NAME=TARGET/);
    assert.throws(() => ModelAliases.parse(['x=a||b']), /must be NAME=TARGET/);
    assert.throws(() => ModelAliases.parse(['x=a', 'x=b']), /'x' is defined twice/);
    assert.throws(() => ModelAliases.parse(['x=y', 'y=a']), /lists the alias 'y'/);
    assert.throws(() => ModelAliases.parse(['x=*']), /'\*' stands for every model/);
    assert.throws(() => ModelAliases.parse([`x=${'a'.repeat(300)}`], 256), /at most 256 characters/);
  });
});

// ---------- fair queueing ----------

describe('fair queueing', () => {
  it('a tenant that queues 500 and another that then queues 3: the 3 run within a few slot-turns', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('first', 'm', 0, { tenant: 'script' });
    for (let i = 0; i < 500; i++) s.submit(`flood${i}`, 'm', 1, { tenant: 'script' });
    for (let i = 0; i < 3; i++) s.submit(`few${i}`, 'm', 2, { tenant: 'chat' });
    const order: string[] = [];
    let running = 'first';
    for (let turn = 0; turn < 8; turn++) {
      const [d] = only(s.complete(running, 'A', 3 + turn), 'dispatch');
      running = d!.requestId;
      order.push(running);
    }
    assert.deepEqual(order.slice(0, 6), ['flood0', 'few0', 'flood1', 'few1', 'flood2', 'few2']);
  });

  it('a requeued request still goes first; priorities beat tenant turns; X-Relay-Queue-Position estimate', () => {
    const s = make({ priorityAgingMs: 0 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['n'], 1), 0);
    s.submit('busy', 'm', 0);
    s.submit('low', 'm', 1, { tenant: 'x', priority: 'low' });
    s.submit('norm', 'm', 1, { tenant: 'y' });
    s.submit('high', 'm', 1, { tenant: 'z', priority: 'high' });
    assert.equal(s.queuePosition('low'), 1);
    assert.equal(s.queuePosition('high'), 3, 'the place when queued, not the order of service');
    assert.equal(s.queuePosition('busy'), undefined, 'running requests have no place');
    // busy's worker dies before answering: busy is requeued ahead of everything.
    s.registerWorker(worker('C', ['n'], 1), 0);
    assert.deepEqual(s.workerLost('A', 2), []);
    assert.deepEqual(s.registerWorker(worker('A2', ['m'], 1), 3), [dispatch('busy', 'A2')]);
    assert.deepEqual(s.complete('busy', 'A2', 4), [dispatch('high', 'A2')]);
    assert.deepEqual(s.complete('high', 'A2', 5), [dispatch('norm', 'A2')]);
    assert.deepEqual(s.complete('norm', 'A2', 6), [dispatch('low', 'A2')]);
  });

  it('aging: a low request that waited --priority-aging competes one level up', () => {
    const s = make({ priorityAgingMs: 1000 });
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('busy', 'm', 0);
    s.submit('low', 'm', 0, { priority: 'low' });
    s.submit('norm', 'm', 600);
    assert.deepEqual(s.complete('busy', 'A', 1500), [dispatch('low', 'A')], 'waited 1.5 s: now as normal, and older');
    const t = make({ priorityAgingMs: 1000 });
    t.registerWorker(worker('A', ['m'], 1), 0);
    t.submit('busy', 'm', 0);
    t.submit('low', 'm', 0, { priority: 'low' });
    t.submit('norm', 'm', 600);
    assert.deepEqual(t.complete('busy', 'A', 900), [dispatch('norm', 'A')], 'not aged yet: normal first');
  });
});

describe('per-tenant in-flight limits', () => {
  it('a tenant at its limit waits in the queue though workers are free; others are not held up', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 2), 0);
    s.registerWorker(worker('B', ['m'], 2), 0);
    const lim = { tenant: 'key:1', tenantLimit: 1 };
    assert.equal(targets(s.submit('k1', 'm', 1, lim)).length, 1);
    assert.deepEqual(s.submit('k2', 'm', 1, lim), [], 'at its limit: queued, not refused');
    assert.deepEqual(s.submit('k3', 'm', 1, lim), []);
    assert.equal(targets(s.submit('u1', 'm', 1, { tenant: 'other' })).length, 1, 'another tenant runs at once');
    const w = s.workerOf('k1')!;
    assert.deepEqual(targets(s.complete('k1', w, 2)), [`k2>${w}`], 'its slot back: its next request runs');
    // Cancel and worker loss give the slot back too.
    assert.deepEqual(targets(s.cancel('k2', 'client_disconnect', 3).filter((c) => c.type === 'dispatch')), [`k3>${w}`]);
    assert.equal(s.queueDepth, 0);
  });

  it('when a tenant drops below its limit, an idle worker of another model takes its queued request', () => {
    const s = make();
    s.registerWorker(worker('A', ['a'], 1), 0);
    s.registerWorker(worker('B', ['b'], 1), 0);
    const lim = { tenant: 'key:1', tenantLimit: 1 };
    assert.deepEqual(s.submit('ka', 'a', 1, lim), [dispatch('ka', 'A')]);
    assert.deepEqual(s.submit('kb', 'b', 1, lim), [], 'B is idle, but the tenant is at its limit');
    assert.deepEqual(s.complete('ka', 'A', 2), [dispatch('kb', 'B')]);
  });

  it('a request timeout gives the slot back to the key: its next request runs', () => {
    const s = make({ requestTimeoutMs: 1000 });
    s.registerWorker(worker('A', ['m'], 2), 0);
    const lim = { tenant: 'key:1', tenantLimit: 1 };
    s.submit('k1', 'm', 0, lim);
    assert.deepEqual(s.submit('k2', 'm', 0, lim), []);
    const cmds = s.tick(1001);
    expectFail(cmds.filter((c) => c.type === 'fail'), 'k1', 'request_timeout');
    assert.deepEqual(targets(cmds), ['k2>A']);
  });

  it('a limit of 2 with one worker lost: the requeued request keeps going first', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 4), 0);
    const lim = { tenant: 'key:1', tenantLimit: 2 };
    s.submit('k1', 'm', 0, lim);
    s.submit('k2', 'm', 0, lim);
    assert.deepEqual(s.submit('k3', 'm', 0, lim), []);
    assert.deepEqual(s.workerLost('A', 1), [], 'nobody to take them yet');
    assert.equal(s.queueDepth, 3);
    const cmds = s.registerWorker(worker('B', ['m'], 4), 2);
    assert.deepEqual(targets(cmds), ['k1>B', 'k2>B'], 'the two requeued ones, and the limit holds');
  });
});

// ---------- cache-aware routing ----------

/** A conversation's hints at turn `t` (1-based): its prefix grows by one block per turn. */
const conv = (c: number, t: number, affinity?: number): RoutingHints => ({ prefix: Array.from({ length: t }, (_, i) => c * 100 + i), ...(affinity !== undefined ? { affinity } : {}) });

describe('cache-aware routing', () => {
  it("a conversation's turns go back to the worker that served its earlier turns, where least-loaded would alternate", () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 4), 0);
    s.registerWorker(worker('B', ['m'], 4), 0);
    const seen: string[] = [];
    for (let t = 1; t <= 4; t++) {
      const [c] = only(s.submit(`x${t}`, 'm', t, { routing: conv(1, t) }), 'dispatch');
      seen.push(c!.workerId);
      if (t > 1) assert.equal(s.routeOf(`x${t}`), 'prefix');
      if (t > 1) assert.equal(s.matchedBlocksOf(`x${t}`), t - 1, 'the earlier turns matched');
      s.complete(`x${t}`, c!.workerId, t);
    }
    assert.deepEqual(seen, ['A', 'A', 'A', 'A']);
    // Another conversation, unknown to the index, goes to the least loaded (B: least recently used).
    assert.deepEqual(s.submit('y1', 'm', 10, { routing: conv(2, 1) }), [dispatch('y1', 'B')]);
    assert.equal(s.routeOf('y1'), 'least_loaded');
    const ll = make({}, [], { mode: 'least-loaded' });
    ll.registerWorker(worker('A', ['m'], 4), 0);
    ll.registerWorker(worker('B', ['m'], 4), 0);
    const alt: string[] = [];
    for (let t = 1; t <= 4; t++) {
      const [c] = only(ll.submit(`x${t}`, 'm', t, { routing: conv(1, t) }), 'dispatch');
      alt.push(c!.workerId);
      ll.complete(`x${t}`, c!.workerId, t);
    }
    assert.deepEqual(alt, ['A', 'B', 'A', 'B']);
  });

  it('an affinity key sticks, over the prefix guess', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 4), 0);
    s.registerWorker(worker('B', ['m'], 4), 0);
    s.submit('p', 'm', 0, { routing: conv(1, 2) }); // A learns conversation 1
    s.complete('p', 'A', 0);
    s.submit('k1', 'm', 1, { routing: { affinity: 7 } }); // B: least recently dispatched
    s.complete('k1', 'B', 1);
    // Conversation 1's prefix lives on A, but the key names B.
    assert.deepEqual(s.submit('k2', 'm', 2, { routing: { ...conv(1, 3), affinity: 7 } }), [dispatch('k2', 'B')]);
    assert.equal(s.routeOf('k2'), 'affinity');
  });

  it('a busy preferred worker loses the request to an idle one (load bound), and the index learns the new home', () => {
    const s = make({}, [], { loadFactor: 2 });
    s.registerWorker(worker('A', ['m'], 4), 0);
    s.registerWorker(worker('B', ['m'], 4), 0);
    proveAll(s, 'm', 8);
    s.submit('t1', 'm', 1, { routing: conv(1, 1) });
    const home = s.workerOf('t1')!;
    const other = home === 'A' ? 'B' : 'A';
    // Two more on the home worker: (3+1)/4 against (0+1)/4 is past the factor 2.
    s.submit('f1', 'm', 1, { routing: conv(1, 1) });
    s.submit('f2', 'm', 1, { routing: conv(1, 1) });
    assert.equal(s.workerOf('f1'), home);
    assert.equal(s.workerOf('f2'), other, 'f2 would make the home worker 3 in flight against 0');
    assert.equal(s.routeOf('f2'), 'load_bound');
    s.complete('t1', home, 2);
    s.complete('f1', home, 2);
    s.complete('f2', other, 2);
    // The latest dispatch of those blocks was to the other worker: the next turn follows it.
    assert.deepEqual(s.submit('t2', 'm', 3, { routing: conv(1, 2) }), [dispatch('t2', other)]);
  });

  it('a worker freeing a slot takes a queued request holding its prompt ahead of the head, at most MAX_PASSES times past one head', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('a1', 'm', 0, { routing: conv(1, 1) }); // A
    s.submit('b1', 'm', 0, { routing: conv(2, 1) }); // B
    // Queued: the head prefers B, then a run of requests that prefer A.
    s.submit('b2', 'm', 1, { routing: conv(2, 2) });
    for (let i = 0; i < MAX_PASSES + 1; i++) s.submit(`a${i + 2}`, 'm', 1, { routing: conv(1, 2 + i) });
    let running = 'a1';
    const order: string[] = [];
    for (let i = 0; i < MAX_PASSES + 1; i++) {
      const [d] = only(s.complete(running, 'A', 2 + i), 'dispatch');
      order.push(`${d!.requestId}:${s.routeOf(d!.requestId)}`);
      running = d!.requestId;
    }
    const passed = Array.from({ length: MAX_PASSES }, (_, i) => `a${i + 2}:queued_affinity`);
    assert.deepEqual(order, [...passed, 'b2:queued'], 'the head, passed over MAX_PASSES times, goes next');
  });

  it('a worker nobody waits for takes a first turn (no preference) ahead of a head that waits for another worker', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('a1', 'm', 0, { routing: conv(1, 1) });
    s.submit('b1', 'm', 0, { routing: conv(2, 1) });
    s.submit('b2', 'm', 1, { routing: conv(2, 2) }); // the head: waits for B
    s.submit('new', 'm', 1, { routing: conv(3, 1) }); // a first turn: anywhere
    s.submit('plain', 'm', 1); // no hints: only ever in fair order
    assert.deepEqual(s.complete('a1', 'A', 2), [dispatch('new', 'A')]);
    assert.equal(s.routeOf('new'), 'queued');
    assert.deepEqual(s.complete('b1', 'B', 3), [dispatch('b2', 'B')]);
    assert.equal(s.routeOf('b2'), 'queued_affinity');
  });

  it('the head keeps its turn when it prefers the freed worker too, or was requeued', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('a1', 'm', 0, { routing: conv(1, 1) });
    s.submit('h', 'm', 1, { routing: conv(1, 2) });
    s.submit('later', 'm', 1, { routing: conv(1, 3) });
    assert.deepEqual(s.complete('a1', 'A', 2), [dispatch('h', 'A')]);
  });

  it('a request passed over only by higher-or-equal priority and by tenants that may run', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('a1', 'm', 0, { routing: conv(1, 1) });
    s.submit('b1', 'm', 0, { routing: conv(2, 1) });
    s.submit('head', 'm', 1, { routing: conv(2, 2), priority: 'high' });
    s.submit('lowA', 'm', 1, { routing: conv(1, 2), priority: 'low' });
    assert.deepEqual(s.complete('a1', 'A', 2), [dispatch('head', 'A')], 'a low request never passes a high one');
  });

  it('a worker that leaves is forgotten: its conversations and the requests waiting for it move', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.registerWorker(worker('B', ['m'], 1), 0);
    s.submit('a1', 'm', 0, { routing: conv(1, 1, 5) });
    s.submit('b1', 'm', 0, { routing: conv(2, 1) });
    s.submit('a2', 'm', 1, { routing: conv(1, 2, 5) }); // waits for A
    assert.equal(s.queueDepth, 1);
    s.complete('a1', 'A', 1); // A takes a2
    assert.equal(s.workerOf('a2'), 'A');
    s.complete('a2', 'A', 2);
    s.workerLost('A', 3); // checkInvariants: the index names no departed worker
    s.complete('b1', 'B', 3);
    assert.deepEqual(s.submit('a3', 'm', 4, { routing: conv(1, 3, 5) }), [dispatch('a3', 'B')]);
    assert.equal(s.routeOf('a3'), 'least_loaded', 'nothing remembered of A');
    // A returns under a new id: conversation 1 now lives on B.
    s.registerWorker(worker('A2', ['m'], 1), 5);
    s.complete('a3', 'B', 5);
    assert.deepEqual(s.submit('a4', 'm', 6, { routing: conv(1, 4, 5) }), [dispatch('a4', 'B')]);
  });

  it('routing decisions are counted by reason', () => {
    const s = make();
    s.registerWorker(worker('A', ['m'], 1), 0);
    s.submit('r1', 'm', 0, { routing: conv(1, 1) });
    s.submit('r2', 'm', 0, { routing: conv(1, 2) });
    s.complete('r1', 'A', 1);
    s.submit('r3', 'm', 1);
    s.complete('r2', 'A', 2); // r3 (no hints) runs in fair order
    const d = s.router.decisions;
    assert.equal(d.least_loaded, 1);
    assert.equal(d.queued_affinity, 1, 'r2 waited for the worker holding its first turn');
    assert.equal(d.queued, 1);
    assert.equal(d.prefix + d.affinity + d.load_bound, 0);
  });
});
