// Requests, errors, tokens and latency in 5-second buckets over the last 15 minutes: what the
// dashboard's charts draw. Old buckets are reused in place, so the series never grows.
import { percentiles } from './latency-window.js';

export const BUCKET_MS = 5_000;
const BUCKETS = 180;
const SAMPLES_PER_BUCKET = 256;

interface Bucket {
  start: number;
  requests: number;
  errors: number;
  tokens: number;
  durations: number[];
}

export interface SeriesPoint {
  /** Unix ms of the bucket's start. */
  t: number;
  requests: number;
  errors: number;
  tokens: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

export class TimeSeries {
  private readonly buckets: Bucket[] = Array.from({ length: BUCKETS }, () => ({ start: -1, requests: 0, errors: 0, tokens: 0, durations: [] }));

  record(nowMs: number, isError: boolean, tokens: number, totalMs: number): void {
    const b = this.bucket(nowMs);
    b.requests++;
    if (isError) b.errors++;
    b.tokens += tokens;
    if (b.durations.length < SAMPLES_PER_BUCKET) b.durations.push(totalMs);
  }

  /** Every bucket of the last `minutes` up to now, oldest first, empty ones included. */
  points(nowMs: number, minutes = 15): SeriesPoint[] {
    const n = Math.min(BUCKETS, Math.ceil((minutes * 60_000) / BUCKET_MS));
    const current = Math.floor(nowMs / BUCKET_MS);
    const out: SeriesPoint[] = [];
    for (let k = current - n + 1; k <= current; k++) {
      const b = this.buckets[k % BUCKETS]!;
      const live = b.start === k * BUCKET_MS;
      const p = live ? percentiles(b.durations) : { p50: null, p90: null, p99: null };
      const p95 = live && b.durations.length ? [...b.durations].sort((x, y) => x - y)[Math.floor(0.95 * b.durations.length)]! : null;
      out.push({ t: k * BUCKET_MS, requests: live ? b.requests : 0, errors: live ? b.errors : 0, tokens: live ? b.tokens : 0, p50_ms: p.p50, p95_ms: p95 === null ? null : Math.round(p95 * 10) / 10 });
    }
    return out;
  }

  private bucket(nowMs: number): Bucket {
    const k = Math.floor(nowMs / BUCKET_MS);
    const b = this.buckets[k % BUCKETS]!;
    if (b.start !== k * BUCKET_MS) {
      b.start = k * BUCKET_MS;
      b.requests = b.errors = b.tokens = 0;
      b.durations.length = 0;
    }
    return b;
  }
}
