// Workload 4, the scheduler in-process (src/core/scheduler.ts, no I/O): 1,000 workers of one model,
// all busy, ≥ 10,000 requests queued for it; cost of complete() → next dispatch, in µs, with 0 or
// 10,000 requests queued for OTHER models (in 1 queue, or spread over 1,000 models). A last case,
// wildcard ('*') workers, shows the path that scans every model's queue; another, requests for a
// model alias whose two targets the workers split between them (--model-alias). Also timed: submit()
// of a request that must queue (every worker busy). BENCH_SCHEDULER=<path> benchmarks another copy
// of scheduler.ts instead (before/after a change; the alias case needs model-aliases.ts beside it).
import { pathToFileURL } from 'node:url';
import type { Command, Scheduler as SchedulerClass } from '../../src/core/scheduler.js';
import type { ModelAliases as AliasesClass } from '../../src/core/model-aliases.js';
import { median, round } from '../stats.js';
import type { Row, Workload } from '../workload.js';

interface Case {
  name: string;
  otherQueued: number;
  otherModels: number;
  wildcard: boolean;
  /** Tenants the own model's queue is spread over (fair queueing turns between them). */
  tenants?: number;
  /** Requests name an alias of two models, which the workers split between them. */
  alias?: boolean;
}

const WORKERS = 1000;
const QUEUED = 10_000;

interface Bench {
  /** µs per complete() that dispatches the next queued request to the freed worker. */
  dispatch(n: number): number;
  /** µs per submit() that has to queue. */
  submitQueued(n: number): number;
}

/** Builds the state of a case. Requests are queued while only one worker of the model exists, and
 * the other 999 register afterwards (each taking one), so setup doesn't pay the busy-scan per submit. */
function setup(Scheduler: typeof SchedulerClass, c: Case, dispatches: number, Aliases?: typeof AliasesClass): Bench {
  const s = c.alias ? new Scheduler({ maxQueueLen: 0 }, Aliases!.parse(['X=A1|A2'])) : new Scheduler({ maxQueueLen: 0 });
  const t = { now: 0 };
  const running = new Map<string, string>(); // worker → its request
  let next = 0;
  const take = (cmds: Command[]): void => {
    for (const cmd of cmds) {
      if (cmd.type === 'dispatch') running.set(cmd.workerId, cmd.requestId);
      else if (cmd.type === 'fail') throw new Error(`unexpected fail: ${cmd.message}`);
    }
  };
  const submit = (model: string): void => take(s.submit(`r${next}`, model, t.now, { tenant: `t${next++ % (c.tenants ?? 1)}` }));
  const asked = c.alias ? 'X' : 'A';
  const own = (w: number): string => (c.wildcard ? '*' : c.alias ? `A${1 + (w % 2)}` : 'A');
  take(s.registerWorker({ id: 'w0', name: 'w0', models: [own(0)], maxConcurrent: 1 }, t.now));
  // other models: one busy worker each, so their queues legitimately stay non-empty
  for (let m = 0; m < c.otherModels; m++) take(s.registerWorker({ id: `o${m}`, name: `o${m}`, models: [`M${m}`], maxConcurrent: 1 }, t.now));
  for (let m = 0; m < c.otherModels; m++) submit(`M${m}`);
  // the own queue: enough that it never drops below QUEUED while measuring; older than the others
  for (let i = 0; i < QUEUED + WORKERS + dispatches; i++) submit(asked);
  for (let i = 0; i < c.otherQueued; i++) submit(`M${i % Math.max(1, c.otherModels)}`);
  for (let w = 1; w < WORKERS; w++) take(s.registerWorker({ id: `w${w}`, name: `w${w}`, models: [own(w)], maxConcurrent: 1 }, t.now));
  if (s.queueDepth < QUEUED + c.otherQueued + dispatches) throw new Error(`setup: queue depth ${s.queueDepth}`);
  const workers = [...running.keys()].filter((w) => w.startsWith('w'));
  let k = 0;
  return {
    dispatch(n) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const wid = workers[k]!;
        const cmds = s.complete(running.get(wid)!, wid, ++t.now);
        const d = cmds[0];
        if (d?.type !== 'dispatch' || d.workerId !== wid) throw new Error('expected a dispatch to the freed worker');
        running.set(wid, d.requestId);
        k = (k + 1) % workers.length;
      }
      return Number(process.hrtime.bigint() - t0) / n / 1000;
    },
    submitQueued(n) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) if (s.submit(`q${next++}`, asked, t.now).length !== 0) throw new Error('expected the request to queue');
      return Number(process.hrtime.bigint() - t0) / n / 1000;
    },
  };
}

export const scheduler: Workload = {
  name: 'scheduler',
  title: `Scheduler in-process: ${WORKERS} busy workers, ≥ ${QUEUED.toLocaleString('en')} queued`,
  async run(ctx) {
    const alt = process.env['BENCH_SCHEDULER'];
    const mod = (await import(alt ? pathToFileURL(alt).href : '../../src/core/scheduler.js')) as { Scheduler: typeof SchedulerClass };
    const aliases = (await import(alt ? pathToFileURL(alt.replace(/scheduler\.ts$/, 'model-aliases.ts')).href : '../../src/core/model-aliases.js').catch(() => undefined)) as { ModelAliases: typeof AliasesClass } | undefined;
    const cases: Case[] = [
      { name: 'no other models queued', otherQueued: 0, otherModels: 0, wildcard: false },
      { name: 'the 10,000 queued spread over 1,000 tenants', otherQueued: 0, otherModels: 0, wildcard: false, tenants: 1000 },
      { name: '10,000 queued for 1 other model', otherQueued: 10_000, otherModels: 1, wildcard: false },
      { name: '10,000 queued over 1,000 other models', otherQueued: 10_000, otherModels: 1000, wildcard: false },
      { name: 'wildcard workers, 10,000 over 1,000 other models', otherQueued: 10_000, otherModels: 1000, wildcard: true },
      { name: 'an alias over 2 models, 10,000 queued over 1,000 other models', otherQueued: 10_000, otherModels: 1000, wildcard: false, alias: true },
    ];
    const batch = 5000;
    const reps = ctx.quick ? 5 : 15;
    const rows: Row[] = [];
    const data: Record<string, unknown> = {};
    for (const c of cases) {
      if (c.alias && !aliases) {
        ctx.log(`scheduler: ${c.name}: skipped (no model-aliases.ts beside the module)`);
        continue;
      }
      ctx.log(`scheduler: ${c.name}`);
      const b = setup(mod.Scheduler, c, batch * (reps + 1), aliases?.ModelAliases);
      b.dispatch(batch); // warm-up (JIT)
      const us: number[] = [];
      for (let r = 0; r < reps; r++) us.push(b.dispatch(batch));
      const m = median(us);
      rows.push({ metric: `complete → dispatch, ${c.name}`, unit: 'µs', result: m, resultKind: 'value' });
      data[c.name] = { dispatchMedianUs: round(m), dispatchMinUs: round(Math.min(...us)), dispatchMaxUs: round(Math.max(...us)), batch, reps };
      if ((c.otherQueued === 0 && c.tenants === undefined) || c.alias) {
        const sub = median(Array.from({ length: 3 }, () => b.submitQueued(200)));
        rows.push({ metric: `submit that queues (all ${WORKERS} workers busy${c.alias ? ', an alias' : ''})`, unit: 'µs', result: sub, resultKind: 'value' });
        data[c.alias ? 'submitQueuedAliasUs' : 'submitQueuedUs'] = round(sub);
      }
    }
    return {
      rows,
      notes: [...(alt ? [`scheduler module: ${alt}`] : []), `median of ${reps} batches of ${batch} completes, each dispatching the next queued request to the freed worker`],
      data,
    };
  },
};
