// A client key's rate limits (requests_per_minute, tokens_per_minute): checked from the headers, before
// any body is read or any worker is involved; over a limit the answer is 429 with Retry-After, in the
// route's own shape. Counts are kept per key in one-second buckets over the last minute (O(1) to
// count, O(60) to sum, summed only for keys that have a limit). Tokens are counted when a request finishes, so a burst can
// overshoot by the requests already running: the limit holds over the minute, not per request.
import type { Credential } from '../auth/index.js';
import { RelayError } from '../core/index.js';

const SECONDS = 60;

/** Counts in one-second buckets over the last minute. */
class MinuteWindow {
  private readonly counts = new Float64Array(SECONDS);
  private readonly stamps = new Float64Array(SECONDS).fill(-1);

  add(nowSec: number, n: number): void {
    const i = nowSec % SECONDS;
    if (this.stamps[i] !== nowSec) {
      this.stamps[i] = nowSec;
      this.counts[i] = 0;
    }
    this.counts[i]! += n;
  }

  sum(nowSec: number): number {
    let total = 0;
    for (let i = 0; i < SECONDS; i++) if (this.stamps[i]! > nowSec - SECONDS) total += this.counts[i]!;
    return total;
  }

  /** Seconds until the oldest counted bucket leaves the window (at least 1). */
  secondsUntilRoom(nowSec: number): number {
    let oldest = nowSec;
    for (let i = 0; i < SECONDS; i++) {
      const s = this.stamps[i]!;
      if (s > nowSec - SECONDS && s < oldest && this.counts[i]! > 0) oldest = s;
    }
    return Math.max(1, oldest + SECONDS - nowSec);
  }
}

interface Windows {
  requests: MinuteWindow;
  tokens: MinuteWindow;
}

export class KeyLimits {
  private readonly byKey = new Map<string, Windows>();

  /** Admits the request (and counts it): undefined, or why not and when to retry. */
  admit(key: Credential, now = Date.now()): { error: RelayError; retryAfterSecs: number; limit: 'requests_per_minute' | 'tokens_per_minute' } | undefined {
    const { requests_per_minute: rpm, tokens_per_minute: tpm } = key.policy;
    const sec = Math.floor(now / 1000);
    const w = this.windows(key.id);
    let over: { what: string; retry: number; limit: 'requests_per_minute' | 'tokens_per_minute' } | undefined;
    if (rpm !== undefined && w.requests.sum(sec) >= rpm) over = { what: `${rpm} requests`, retry: w.requests.secondsUntilRoom(sec), limit: 'requests_per_minute' };
    else if (tpm !== undefined && w.tokens.sum(sec) >= tpm) over = { what: `${tpm} tokens`, retry: w.tokens.secondsUntilRoom(sec), limit: 'tokens_per_minute' };
    if (over) return { error: new RelayError('key_rate_limited', `This API key's limit of ${over.what} per minute is used up; retry in ${over.retry}s.`), retryAfterSecs: over.retry, limit: over.limit };
    w.requests.add(sec, 1);
    return undefined;
  }

  /** A request of this key finished having used `tokens` (prompt + completion). */
  noteTokens(keyId: string, tokens: number, now = Date.now()): void {
    if (tokens <= 0) return;
    this.windows(keyId).tokens.add(Math.floor(now / 1000), tokens);
  }

  /** Use in the last minute, for the admin API. */
  lastMinute(keyId: string, now = Date.now()): { requests: number; tokens: number } {
    const w = this.byKey.get(keyId);
    const sec = Math.floor(now / 1000);
    return { requests: w?.requests.sum(sec) ?? 0, tokens: w?.tokens.sum(sec) ?? 0 };
  }

  private windows(keyId: string): Windows {
    let w = this.byKey.get(keyId);
    if (!w) this.byKey.set(keyId, (w = { requests: new MinuteWindow(), tokens: new MinuteWindow() }));
    return w;
  }
}
