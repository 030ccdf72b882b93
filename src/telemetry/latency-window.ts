// The last few thousand latencies of one model or worker, for percentiles over a recent window.
// A fixed ring of numbers: recording is three array writes, the sorting happens when asked.
const CAPACITY = 4096;

export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface LatencySummary {
  samples: number;
  queue_wait: Percentiles;
  first_byte: Percentiles;
  total: Percentiles;
}

export class LatencyWindow {
  private readonly at = new Float64Array(CAPACITY);
  private readonly queue = new Float64Array(CAPACITY);
  private readonly firstByte = new Float64Array(CAPACITY);
  private readonly total = new Float64Array(CAPACITY);
  private next = 0;
  private filled = 0;

  /** Milliseconds; NaN where a phase never happened (a request that never reached a worker). */
  record(at: number, queueMs: number, firstByteMs: number, totalMs: number): void {
    const i = this.next;
    this.at[i] = at;
    this.queue[i] = queueMs;
    this.firstByte[i] = firstByteMs;
    this.total[i] = totalMs;
    this.next = (i + 1) % CAPACITY;
    if (this.filled < CAPACITY) this.filled++;
  }

  summary(now: number, windowMs: number): LatencySummary {
    const idx: number[] = [];
    for (let i = 0; i < this.filled; i++) if (now - this.at[i]! <= windowMs) idx.push(i);
    return {
      samples: idx.length,
      queue_wait: percentiles(idx.map((i) => this.queue[i]!)),
      first_byte: percentiles(idx.map((i) => this.firstByte[i]!)),
      total: percentiles(idx.map((i) => this.total[i]!)),
    };
  }
}

export function percentiles(values: number[]): Percentiles {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const q = (p: number): number | null => (v.length ? round(v[Math.min(v.length - 1, Math.floor(p * v.length))]!) : null);
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
