// Repeated warnings from one misbehaving peer must not flood the log: per key, the first few lines
// of a window are written, the rest are counted and summarised in one line when the window ends.
import type { Logger } from './log.js';

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

export class LogLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 5,
    private readonly windowMs = 10_000,
  ) {}

  /** Logs at warn unless `key` already used its lines in this window. */
  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    let w = this.windows.get(key);
    if (w && now - w.start >= this.windowMs) {
      if (w.suppressed > 0) this.log.warn({ ...fields, suppressed: w.suppressed, window_secs: this.windowMs / 1000 }, `${msg} (repeats suppressed)`);
      w = undefined;
    }
    if (!w) {
      w = { start: now, written: 0, suppressed: 0 };
      this.windows.set(key, w);
      if (this.windows.size > 10_000) this.prune(now);
    }
    if (w.written < this.perWindow) {
      w.written++;
      this.log.warn(fields, msg);
    } else {
      w.suppressed++;
    }
  }

  private prune(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
