// Non-streaming load on one origin through an undici Pool: an open loop (requests leave on a fixed
// schedule whatever the responses do) for latency, and a closed loop (N connections, each sends its
// next request when the last one answered) for saturated throughput.
import { Pool } from 'undici';
import { MODEL } from './cluster.js';

export const PATH = '/v1/chat/completions';
export const BODY = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say hello in one short sentence.' }] });
/** A small answer at once: 8 tokens, no simulated generation time. */
export const HEADERS = { 'content-type': 'application/json', 'x-mock-tokens': '8', 'x-mock-delay-ms': '0' };

export interface LoadResult {
  /** Milliseconds from send to the end of the body. */
  latencies: Float64Array;
  /** Milliseconds from the scheduled send time (open loop only; includes client timer lag). */
  fromSchedule?: Float64Array;
  completed: number;
  errors: number;
  elapsedMs: number;
}

export function newPool(origin: string, connections: number): Pool {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
}

async function once(pool: Pool): Promise<boolean> {
  const res = await pool.request({ method: 'POST', path: PATH, headers: HEADERS, body: BODY });
  await res.body.dump({ limit: 1 << 20 });
  return res.statusCode === 200;
}

/** `rate` requests per second for `durationMs`, on schedule. */
export async function openLoop(pool: Pool, rate: number, durationMs: number): Promise<LoadResult> {
  const total = Math.floor((rate * durationMs) / 1000);
  const latencies = new Float64Array(total);
  const fromSchedule = new Float64Array(total);
  const interval = 1000 / rate;
  let errors = 0;
  let completed = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  const fire = (i: number, due: number): void => {
    const sent = performance.now();
    inflight.push(
      once(pool).then(
        (ok) => {
          const t = performance.now();
          latencies[i] = t - sent;
          fromSchedule[i] = t - due;
          completed++;
          if (!ok) errors++;
        },
        () => {
          errors++;
          latencies[i] = NaN;
          fromSchedule[i] = NaN;
        },
      ),
    );
  };
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      const now = performance.now();
      for (let due = start + i * interval; i < total && due <= now; due = start + i * interval) fire(i++, due);
      if (i >= total) return resolve();
      setTimeout(tick, Math.max(0, start + i * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(inflight);
  const ok = (a: Float64Array): Float64Array => a.filter((x) => !Number.isNaN(x));
  return { latencies: ok(latencies), fromSchedule: ok(fromSchedule), completed, errors, elapsedMs: performance.now() - start };
}

/** `connections` loops back to back for `durationMs`; throughput = completed / elapsed. */
export async function closedLoop(pool: Pool, connections: number, durationMs: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        if (!(await once(pool))) errors++;
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsedMs = performance.now() - start;
  return { latencies: Float64Array.from(latencies), completed: latencies.length, errors, elapsedMs };
}
