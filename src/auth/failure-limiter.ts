// Counts failed authentications per peer address in a one-minute window. Only failures are limited:
// a correct credential is never refused because someone else guessed from the same address.
const WINDOW_MS = 60_000;
const MAX_TRACKED = 10_000;

export class FailureLimiter {
  private readonly failures = new Map<string, { count: number; windowStart: number }>();

  constructor(private readonly perMinute: number) {}

  /** Seconds to wait if this peer used up its failures, else 0. */
  retryAfter(peer: string, now: number): number {
    const r = this.failures.get(peer);
    if (!r || now - r.windowStart >= WINDOW_MS || r.count < this.perMinute) return 0;
    return Math.max(1, Math.ceil((r.windowStart + WINDOW_MS - now) / 1000));
  }

  noteFailure(peer: string, now: number): void {
    const r = this.failures.get(peer);
    if (!r || now - r.windowStart >= WINDOW_MS) this.failures.set(peer, { count: 1, windowStart: now });
    else r.count++;
    // Bound the table: forget expired windows once it grows.
    if (this.failures.size > MAX_TRACKED) {
      for (const [k, v] of this.failures) if (now - v.windowStart >= WINDOW_MS) this.failures.delete(k);
    }
  }
}
