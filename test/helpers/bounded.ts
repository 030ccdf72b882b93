// Bounded waits for tests: every await on something outside the test has a deadline, and a miss
// fails with a message naming what was awaited, instead of hanging the file.

/** Resolves as `p` does, or rejects after `ms` with "timed out waiting for <what>". */
export function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Items arriving over time (frames, connections) that a test awaits by predicate. `next` looks at
 * what already arrived, then at what arrives, and gives up after `ms` with `what` in the message.
 */
export class Arrivals<T> {
  readonly all: T[] = [];
  private waiters: { pred: (x: T) => boolean; resolve: (x: T) => void; stop: (why: string) => void }[] = [];

  constructor(private readonly label: string) {}

  push(x: T): void {
    this.all.push(x);
    this.waiters = this.waiters.filter((w) => (w.pred(x) ? (w.resolve(x), false) : true));
  }

  next(pred: (x: T) => boolean, what: string, ms = 10_000): Promise<T> {
    const seen = this.all.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (x: T) => (clearTimeout(timer), resolve(x)),
        stop: (why: string) => (clearTimeout(timer), reject(new Error(`${this.label}: ${why} while waiting for ${what}`))),
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.label}: timed out after ${ms} ms waiting for ${what}; got so far: ${this.describe()}`));
      }, ms);
      this.waiters.push(waiter);
    });
  }

  /** Fails every pending wait now (their source is gone), so no timer outlives the test. */
  close(why = 'closed'): void {
    for (const w of this.waiters.splice(0)) w.stop(why);
  }

  private describe(): string {
    try {
      return JSON.stringify(this.all).slice(-600);
    } catch {
      return `${this.all.length} item(s)`;
    }
  }

  count(pred: (x: T) => boolean): number {
    return this.all.filter(pred).length;
  }
}
