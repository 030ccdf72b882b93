// The faults the soak injects. A worker fault takes one worker away and brings it back; the soak
// only picks a target whose every shared model keeps another worker meanwhile. To add a kind, add
// an entry to WORKER_FAULTS (or a server-wide one beside `serverRestart`): its `run` does the harm,
// waits out the recovery, and returns a short note for the fault log. The first picks go through
// every kind once (so even the short soak has each), then at random. If the new kind allows an
// outcome the others don't (as `backend-down` does: a stream its backend was killed under), teach
// `judge` in requests.ts, which is told the faults that overlapped each request.
import { until } from '../helpers/cluster.js';
import type { Fleet, FleetWorker } from './cluster.js';

export interface FaultContext {
  fleet: Fleet;
  rnd: () => number;
  /** The longest any recovery may take before the soak calls it a failure. */
  recoveryMs: number;
}

export interface WorkerFault {
  name: string;
  /** What the report says it does. */
  what: string;
  run(ctx: FaultContext, w: FleetWorker): Promise<string>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Long enough that the server has dropped the worker and the worker has given up on the server. */
function pastHeartbeats(ctx: FaultContext): number {
  const c = ctx.fleet.cfg;
  return Math.max(c.server.heartbeatTimeoutSecs + 2 * c.server.heartbeatIntervalSecs, c.worker.heartbeatTimeoutSecs) * 1000 + Math.floor(ctx.rnd() * 1000);
}

export const WORKER_FAULTS: WorkerFault[] = [
  {
    name: 'kill',
    what: 'SIGKILL the worker, start it again',
    async run(ctx, w) {
      const down = Math.floor(ctx.rnd() * 1000);
      await w.proc.kill();
      await sleep(down);
      const before = w.registrations;
      await w.start();
      await w.registeredAfter(before, 'after SIGKILL', ctx.recoveryMs);
      return `down ${down} ms`;
    },
  },
  {
    name: 'freeze',
    what: 'SIGSTOP the worker past both heartbeat timeouts, then SIGCONT',
    async run(ctx, w) {
      const before = w.registrations;
      const frozen = pastHeartbeats(ctx);
      w.proc.signal('SIGSTOP');
      await sleep(frozen);
      w.proc.signal('SIGCONT');
      await w.registeredAfter(before, 'after SIGCONT', ctx.recoveryMs);
      return `frozen ${frozen} ms`;
    },
  },
  {
    name: 'drain',
    what: 'SIGTERM the worker (it drains and exits 0), start it again',
    async run(ctx, w) {
      w.proc.signal('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([w.proc.exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ctx.recoveryMs)))]).finally(() => clearTimeout(timer));
      if (!exit) throw new Error(`${w.name} did not exit within ${ctx.recoveryMs} ms of SIGTERM`);
      if (exit.code !== 0) throw new Error(`${w.name} exited with ${JSON.stringify(exit)} after SIGTERM`);
      const before = w.registrations;
      await w.start();
      await w.registeredAfter(before, 'after the drain', ctx.recoveryMs);
      return 'exit 0';
    },
  },
  {
    name: 'cut',
    what: "reset the worker's TCP connection to the server (fault proxy)",
    async run(ctx, w) {
      const before = w.registrations;
      const n = await w.proxy.cut();
      await w.registeredAfter(before, 'after the cut', ctx.recoveryMs);
      return `${n} connection(s) reset`;
    },
  },
  {
    name: 'stall',
    what: "stop the worker's TCP connection moving bytes, without closing it (fault proxy)",
    async run(ctx, w) {
      const before = w.registrations;
      const n = await w.proxy.stall();
      // Both ends notice only by their heartbeats; the worker reconnects on a fresh connection.
      await w.registeredAfter(before, 'after the stall', ctx.recoveryMs);
      await w.proxy.cutStalled(); // what is left of the stalled one (never the new one)
      return `${n} connection(s) stalled`;
    },
  },
  {
    name: 'backend-down',
    what: "SIGKILL the worker's backend for 1-4 s, start it again on its port; the worker stays",
    async run(ctx, w) {
      const down = 1000 + Math.floor(ctx.rnd() * 3000);
      const proc = w.proc;
      const [downs, ups] = [proc.count('backend down'), proc.count('backend up')];
      await w.backend.restart(down);
      // A worker that noticed (a call failed, or a probe did) must put itself back by its probes;
      // one that sent nothing meanwhile may never have noticed.
      if (proc.count('backend down') > downs) {
        await until(() => proc.count('backend up') > ups, `${w.name} to see its backend up again`, ctx.recoveryMs);
        return `down ${down} ms, noticed`;
      }
      return `down ${down} ms, not noticed`;
    },
  },
];

/** Restarts the server once every worker fault is over; every worker must come back by itself. */
export async function serverRestart(ctx: FaultContext): Promise<string> {
  const signal = ctx.rnd() < 0.5 ? 'SIGTERM' : 'SIGKILL';
  const drainMs = ctx.fleet.cfg.server.drainTimeoutSecs * 1000;
  await ctx.fleet.restartServer(signal, drainMs + ctx.recoveryMs);
  await ctx.fleet.allRegistered(ctx.recoveryMs);
  return signal;
}
