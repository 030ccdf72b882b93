// The chaos soak: a fleet under mixed load from many clients while seeded faults hit its workers
// and, once, its server; then every request's outcome is checked against the invariants
// (requests.ts), and after the storm the fleet must be whole: workers back, queue empty, backends
// idle, every slot usable at once, server memory back near where it was. Used by `npm run chaos`
// (test/chaos/run.ts) and by the short soak in npm test (test/integration/chaos.test.ts).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { prng } from '../helpers/prng.js';
import { until } from '../helpers/cluster.js';
import { Fleet, SHARED_MODELS, ServerView, type FleetConfig, type WorkerEvent } from './cluster.js';
import { WORKER_FAULTS, serverRestart, type FaultContext, type WorkerFault } from './faults.js';
import { judge, makePlan, pathOf, plannedMs, type Observed, type Outcome, type RequestPlan, type Verdict } from './requests.js';

export interface SoakOptions {
  seed: number;
  /** How long load and faults run. */
  secs: number;
  clients: number;
  workers: number;
  maxConcurrency: number;
  /** Seconds between faults: each gap is drawn from [min, max]. */
  faultGapSecs: [number, number];
  logLevel: string;
  /** Progress lines (the CLI prints them; the test keeps quiet). */
  progress?: (line: string) => void;
}

export const DEFAULT_SOAK: Omit<SoakOptions, 'seed' | 'secs'> = {
  clients: 10,
  workers: 4,
  maxConcurrency: 2,
  faultGapSecs: [0.7, 2.5],
  logLevel: 'info',
};

export interface FaultRecord {
  kind: string;
  target: string;
  start: number;
  end: number;
  note: string;
  failed?: string;
}

export interface RequestRecord {
  plan: RequestPlan;
  start: number;
  end: number;
  observed: Observed;
  verdict?: Verdict;
}

export interface SoakReport {
  options: SoakOptions;
  requests: RequestRecord[];
  faults: FaultRecord[];
  /** Failures of the fleet itself: a fault it did not recover from, a final check that failed. */
  problems: string[];
  checks: string[];
  hangBoundMs: number;
  longestMs: number;
  /** What the server said about workers coming and going (soak clock). */
  workerEvents: WorkerEvent[];
  /** Workers the server dropped for silence while no fault was on them (a starved machine). */
  unplannedDrops: number;
  /** The longest the soak's own event loop (clients and fault proxies) was held up. */
  soakLagMaxMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const o = options;
  const log = o.progress ?? (() => {});
  const cfg: FleetConfig = {
    workers: o.workers,
    maxConcurrency: o.maxConcurrency,
    server: { heartbeatIntervalSecs: 0.5, heartbeatTimeoutSecs: 2, queueTimeoutSecs: 10, requestTimeoutSecs: 8, drainTimeoutSecs: 3, maxRequeues: 3 },
    worker: { heartbeatTimeoutSecs: 3, drainTimeoutSecs: 5 },
    logLevel: o.logLevel,
  };
  const s = cfg.server;
  // The longest any request may take: every attempt may wait out the queue, then lose its worker
  // (found by the heartbeat, or by the request timeout), and a server restart adds its drain.
  const attemptMs = (p: RequestPlan): number => (s.queueTimeoutSecs + s.requestTimeoutSecs + s.heartbeatTimeoutSecs + s.heartbeatIntervalSecs) * 1000 + plannedMs(p);
  const boundMs = (p: RequestPlan): number => (s.maxRequeues + 1) * attemptMs(p) + s.drainTimeoutSecs * 1000 + 10_000;
  const recoveryMs = 30_000;

  const fleet = new Fleet(cfg);
  const report: SoakReport = { options: o, requests: [], faults: [], problems: [], checks: [], hangBoundMs: 0, longestMs: 0, workerEvents: [], unplannedDrops: 0, soakLagMaxMs: 0 };
  const agent = new Agent({ keepAliveTimeout: 4_000, connections: o.clients * 2 });
  try {
    await fleet.start();
    // What a server holds before the storm (the same build restarts mid-storm): the memory check's
    // start. Taken idle: a snapshot holds the server up for a second or more.
    const heapBase = await fleet.retainedHeap();
    await fleet.allRegistered(30_000);
    log(`fleet up: server ${fleet.url}, ${o.workers} workers (max-concurrency ${o.maxConcurrency}); seed ${o.seed}`);
    const t0 = performance.now();
    const deadline = t0 + o.secs * 1000;
    const at = (): number => performance.now() - t0;
    fleet.clock = at;
    report.workerEvents = fleet.workerEvents;
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();

    // ---------- load ----------
    let n = 0;
    const client = async (i: number): Promise<void> => {
      const rnd = prng(o.seed * 7919 + i + 1);
      while (performance.now() < deadline) {
        const plan = makePlan(n++, rnd, SHARED_MODELS, `${o.seed}/${i}`);
        const rec: RequestRecord = { plan, start: at(), end: 0, observed: { text: '' } };
        report.requests.push(rec);
        rec.observed = await send(agent, fleet.url, plan, boundMs(plan));
        rec.end = at();
        // Refused while the server restarts: a real client backs off a little.
        if (rec.observed.error === 'refused' || rec.observed.status === 503 || rec.observed.status === 404) await sleep(200);
      }
    };

    // ---------- faults ----------
    const ctx: FaultContext = { fleet, rnd: prng(o.seed), recoveryMs };
    const active = new Map<string, Promise<void>>();
    const restartAt = o.secs * 1000 * (0.35 + 0.2 * ctx.rnd());
    let restarted = false;
    const order = shuffle([...WORKER_FAULTS], ctx.rnd);
    let picks = 0;
    const legal = (): string[] =>
      fleet.workers
        .filter((w) => !active.has(w.name))
        .filter((w) => w.models.filter((m) => SHARED_MODELS.includes(m)).every((m) => fleet.workers.some((x) => x !== w && !active.has(x.name) && x.models.includes(m))))
        .map((w) => w.name);
    const inject = (kind: WorkerFault, name: string): void => {
      const w = fleet.workers.find((x) => x.name === name)!;
      const rec: FaultRecord = { kind: kind.name, target: name, start: at(), end: Infinity, note: '' };
      report.faults.push(rec);
      log(`${(rec.start / 1000).toFixed(1)}s ${kind.name} ${name}`);
      active.set(
        name,
        kind
          .run(ctx, w)
          .then(
            (note) => void (rec.note = note),
            (err: Error) => {
              rec.failed = err.message;
              report.problems.push(`fault ${kind.name} on ${name} at ${(rec.start / 1000).toFixed(1)}s: ${err.message}`);
            },
          )
          .finally(() => {
            rec.end = at();
            active.delete(name);
          }),
      );
    };
    const faults = async (): Promise<void> => {
      await sleep(1000);
      while (performance.now() < deadline - 1000 && report.problems.length === 0) {
        if (!restarted && at() >= restartAt) {
          restarted = true;
          await Promise.all(active.values());
          const rec: FaultRecord = { kind: 'server-restart', target: 'server', start: at(), end: Infinity, note: '' };
          report.faults.push(rec);
          log(`${(rec.start / 1000).toFixed(1)}s server restart`);
          try {
            rec.note = await serverRestart(ctx);
          } catch (err) {
            rec.failed = (err as Error).message;
            report.problems.push(`server restart: ${rec.failed}`);
          }
          rec.end = at();
          continue;
        }
        const targets = legal();
        if (targets.length > 0) {
          const kind = picks < order.length ? order[picks]! : WORKER_FAULTS[Math.floor(ctx.rnd() * WORKER_FAULTS.length)]!;
          picks++;
          inject(kind, targets[Math.floor(ctx.rnd() * targets.length)]!);
        }
        const [lo, hi] = o.faultGapSecs;
        await sleep((lo + ctx.rnd() * (hi - lo)) * 1000);
      }
      await Promise.all(active.values());
    };

    // ---------- memory ----------
    const rss: { at: number; restarts: number; bytes: number }[] = [];
    const sampler = setInterval(() => {
      try {
        rss.push({ at: at(), restarts: fleet.serverRestarts, bytes: fleet.serverRss() });
      } catch {
        // between server processes
      }
    }, 1000);

    // ---------- backend concurrency, watched as it happens (the final check has the last word) ----------
    const over = new Set<string>();
    let watching = true;
    const watch = async (): Promise<void> => {
      while (watching) {
        for (const b of fleet.backends) {
          const st = await b.stats().catch(() => undefined);
          if (st && st.maxActive > o.maxConcurrency && !over.has(b.name)) {
            over.add(b.name);
            const now = at();
            const near = report.faults.filter((f) => f.start < now && f.end > now - 1000).map((f) => `${f.kind} ${f.target}`);
            report.problems.push(`backend ${b.name} reached ${st.maxActive} concurrent calls by ${(now / 1000).toFixed(1)}s (faults under way or just over: ${near.join(', ') || 'none'})`);
          }
        }
        await sleep(200);
      }
    };
    const watcher = watch();

    await Promise.all([faults(), ...Array.from({ length: o.clients }, (_, i) => client(i))]);
    watching = false;
    await watcher;
    clearInterval(sampler);
    lag.disable();
    report.soakLagMaxMs = lag.max / 1e6;
    log(`${(at() / 1000).toFixed(1)}s load stopped: ${report.requests.length} requests, ${report.faults.length} faults`);

    // ---------- verdicts ----------
    const restarts = report.faults.filter((f) => f.kind === 'server-restart');
    const view = new ServerView(fleet.workerEvents, at());
    for (const r of report.requests) {
      const overlaps = (f: FaultRecord): boolean => f.start < r.end && f.end > r.start;
      const workers = fleet.workersFor(r.plan.model);
      r.verdict = judge(r.plan, r.observed, {
        backends: fleet.backendsFor(r.plan.model),
        duringRestart: restarts.some(overlaps),
        workerFaults: report.faults.filter((f) => f.kind !== 'server-restart' && overlaps(f)).map((f) => ({ kind: f.kind, target: f.target })),
        downBackends: report.faults.filter((f) => f.kind === 'backend-down' && overlaps(f)).map((f) => fleet.workers.find((w) => w.name === f.target)!.backend.name),
        // The soak's clock reads a log line a moment after the server wrote it: a little slack.
        unserved: view.noneConnected(workers, r.start - 250, r.end + 250),
        serverLosses: view.losses(workers, r.start - 250, r.end + 250),
        maxRequeues: s.maxRequeues,
      });
      report.longestMs = Math.max(report.longestMs, r.end - r.start);
    }
    report.hangBoundMs = Math.max(...report.requests.map((r) => boundMs(r.plan)));
    report.unplannedDrops = fleet.workerEvents.filter(
      (e) => e.msg === 'closing worker connection' && e.reason.startsWith('heartbeat timeout') && !report.faults.some((f) => f.target === e.worker && f.start <= e.at && f.end >= e.at - 1000),
    ).length;

    // ---------- after the storm ----------
    await afterStorm(fleet, agent, report, rss, heapBase, o);
  } catch (err) {
    report.problems.push(`soak aborted: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await agent.close().catch(() => {});
    await fleet.stop();
  }
  return report;
}

async function afterStorm(fleet: Fleet, agent: Agent, report: SoakReport, rss: { at: number; restarts: number; bytes: number }[], heapBase: number, o: SoakOptions): Promise<void> {
  const check = async (what: string, fn: () => Promise<string>): Promise<void> => {
    try {
      report.checks.push(`${what}: ${await fn()}`);
    } catch (err) {
      report.problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  await check('workers back', async () => {
    await fleet.allRegistered(30_000);
    return `${fleet.workers.length}/${fleet.workers.length} connected`;
  });
  await check('queue', async () => {
    await until(async () => (await fleet.health()).queue_depth === 0, 'an empty queue', 10_000);
    return 'empty';
  });
  await check('backends idle', async () => {
    await until(async () => (await Promise.all(fleet.backends.map((b) => b.stats()))).every((st) => st.active === 0), 'every backend idle', 10_000);
    return 'no call open';
  });
  await check('backend concurrency', async () => {
    const stats = await Promise.all(fleet.backends.map(async (b) => [b.name, (await b.stats()).maxActive] as const));
    const over = stats.filter(([, m]) => m > o.maxConcurrency);
    if (over.length) throw new Error(`above --max-concurrency ${o.maxConcurrency}: ${over.map(([n, m]) => `${n} had ${m}`).join(', ')}`);
    return stats.map(([n, m]) => `${n} ${m}/${o.maxConcurrency}`).join(', ');
  });
  // Every slot at once: each worker's own model, as many requests as it has slots, held open.
  await check('burst', async () => {
    const slots = fleet.workers.length * o.maxConcurrency;
    const controller = new AbortController();
    const held = fleet.workers.flatMap((w) =>
      Array.from({ length: o.maxConcurrency }, () =>
        request(`${fleet.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', 'x-mock-hang': '1' },
          body: JSON.stringify({ model: `own-${w.name}`, messages: [{ role: 'user', content: 'burst' }] }),
          signal: controller.signal,
        }).then(
          async (r) => `${r.statusCode} ${await r.body.text()}`,
          () => 'aborted',
        ),
      ),
    );
    try {
      await until(async () => (await Promise.all(fleet.backends.map((b) => b.stats()))).reduce((a, st) => a + st.active, 0) === slots, `all ${slots} burst requests running at the backends`, 10_000);
      const depth = (await fleet.health()).queue_depth;
      if (depth !== 0) throw new Error(`${depth} burst requests queued with every slot supposedly free`);
    } finally {
      controller.abort();
      const answers = await Promise.all(held);
      const early = answers.filter((a) => a !== 'aborted');
      if (early.length) report.problems.push(`burst: ${early.length} requests answered before their abort: ${early[0]}`);
    }
    await until(async () => (await Promise.all(fleet.backends.map((b) => b.stats()))).every((st) => st.active === 0), 'the burst cancelled at every backend', 10_000);
    return `${slots} admitted at once, then cancelled`;
  });
  await check('server memory', async () => {
    // Retained heap (a heap snapshot collects first) after the storm against before it: what a leak
    // would grow. RSS only for the record, since V8 keeps what it once needed.
    const own = rss.filter((x) => x.restarts === fleet.serverRestarts);
    const rssLine = own.length ? `; RSS ${mib(own[0]!.bytes)} → peak ${mib(Math.max(...own.map((x) => x.bytes)))} → ${mib(fleet.serverRss())}` : '';
    const end = await fleet.retainedHeap();
    const limit = heapBase * 1.25 + 1024 * 1024;
    const line = `retained heap ${mib(heapBase)} before the storm, ${mib(end)} after it (limit ${mib(limit)})${rssLine}`;
    if (end > limit) throw new Error(line);
    return line;
  });
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function shuffle<T>(xs: T[], rnd: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Sends one planned request and reads its whole answer, within the hang bound. */
async function send(agent: Agent, base: string, plan: RequestPlan, boundMs: number): Promise<Observed> {
  const controller = new AbortController();
  let why: 'aborted' | 'hang' | undefined;
  const hang = setTimeout(() => {
    why = 'hang';
    controller.abort();
  }, boundMs);
  const abort = plan.script.kind === 'client-abort' ? setTimeout(() => ((why = 'aborted'), controller.abort()), plan.script.afterMs) : undefined;
  const out: Observed = { text: '' };
  try {
    const res = await request(`${base}${pathOf(plan.route)}`, { method: 'POST', dispatcher: agent, headers: plan.headers, body: plan.body, signal: controller.signal });
    out.status = res.statusCode;
    out.headers = res.headers;
    res.body.setEncoding('utf8');
    for await (const chunk of res.body) out.text += chunk as string;
  } catch (err) {
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    if (why) {
      out.error = why;
      out.errorDetail = `${boundMs} ms`;
    } else if ((e.code ?? e.cause?.code) === 'ECONNREFUSED') {
      out.error = 'refused';
      out.errorDetail = 'ECONNREFUSED';
    } else {
      out.error = 'connection';
      out.errorDetail = `${e.code ?? e.cause?.code ?? ''} ${e.message ?? ''}`.trim();
    }
  } finally {
    clearTimeout(hang);
    clearTimeout(abort);
  }
  return out;
}

// ---------- the report ----------

const OUTCOMES: Outcome[] = ['ok', 'planned-error', 'planned-death', 'worker-lost', 'client-abort', 'restart', 'unserved', 'backend-down', 'requeue-exhausted', 'violation'];

export function violations(r: SoakReport): RequestRecord[] {
  return r.requests.filter((x) => x.verdict?.outcome === 'violation');
}

export function formatReport(r: SoakReport): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push(`chaos soak: seed ${o.seed}, ${o.secs} s, ${o.workers} workers (--max-concurrency ${o.maxConcurrency}), ${o.clients} clients`);
  lines.push(`replay: npm run chaos -- --secs ${o.secs} --seed ${o.seed}`);
  lines.push('');
  const kinds = new Map<string, Map<Outcome, number>>();
  for (const x of r.requests) {
    const k = `${x.plan.route === 'chat' ? 'openai chat' : 'anthropic messages'}${x.plan.stream ? ', stream' : ''}`;
    const m = kinds.get(k) ?? new Map<Outcome, number>();
    kinds.set(k, m);
    const out = x.verdict?.outcome ?? 'violation';
    m.set(out, (m.get(out) ?? 0) + 1);
  }
  const header = ['requests', 'total', ...OUTCOMES];
  const rows = [...kinds.entries()].sort().map(([k, m]) => [k, String([...m.values()].reduce((a, b) => a + b, 0)), ...OUTCOMES.map((x) => String(m.get(x) ?? 0))]);
  const totals = ['all', String(r.requests.length), ...OUTCOMES.map((x) => String(r.requests.filter((q) => (q.verdict?.outcome ?? 'violation') === x).length))];
  lines.push(...table([header, ...rows, totals]));
  lines.push('');
  const byKind = new Map<string, FaultRecord[]>();
  for (const f of r.faults) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f]);
  const faultRows = [...byKind.entries()].map(([k, fs]) => [k, String(fs.length), String(fs.filter((f) => f.failed).length), fs.map((f) => f.note).filter(Boolean).slice(0, 3).join('; ')]);
  lines.push(...table([['faults', 'injected', 'failed to recover', 'e.g.'], ...faultRows], true));
  lines.push('');
  lines.push(`longest request ${(r.longestMs / 1000).toFixed(1)} s (hang bound ${(r.hangBoundMs / 1000).toFixed(0)} s); the soak's own event loop was held up ${r.soakLagMaxMs.toFixed(0)} ms at most`);
  lines.push(`workers the server dropped for silence with no fault on them (a starved machine): ${r.unplannedDrops}`);
  for (const c of r.checks) lines.push(`ok   ${c}`);
  for (const p of r.problems) lines.push(`FAIL ${p}`);
  const bad = violations(r);
  lines.push(bad.length === 0 && r.problems.length === 0 ? 'every outcome checked: no violations' : `${bad.length} violations, ${r.problems.length} fleet problems`);
  for (const v of bad.slice(0, 20)) {
    const near = r.faults.filter((f) => f.start < v.end + 100 && f.end > v.start - 100).map((f) => `${f.kind} ${f.target} ${(f.start / 1000).toFixed(1)}-${(f.end / 1000).toFixed(1)}s`);
    lines.push(`  #${v.plan.n} ${v.plan.route}${v.plan.stream ? ' stream' : ''} ${v.plan.model} ${JSON.stringify(v.plan.script)} ${(v.start / 1000).toFixed(1)}-${(v.end / 1000).toFixed(1)}s: ${v.verdict?.detail}${near.length ? ` [faults: ${near.join(', ')}]` : ''}`);
    const said = r.workerEvents.filter((e) => e.at > v.start - 4000 && e.at < v.end + 500).map((e) => `${(e.at / 1000).toFixed(2)}s ${e.msg} ${e.worker} ${e.reason}`.trim());
    if (said.length) lines.push(`    server: ${said.slice(-12).join('; ')}`);
  }
  return lines.join('\n');
}

/** Columns padded to line up: the first (and with `textLast`, the last) to the left, numbers right. */
function table(rows: string[][], textLast = false): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const last = rows[0]!.length - 1;
  return rows.map((r) => r.map((c, i) => (i === 0 || (textLast && i === last) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}
