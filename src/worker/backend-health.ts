// Whether the local backend is up. Learned "down" at once from a failed call (or a failed probe);
// while down, probed with a short backoff so recovery is noticed within seconds; while up, probed at
// a slow interval. The probe is the cheapest call there is: GET /health (llama-server and vLLM answer
// it, and say 503 while a model loads); any other HTTP answer, even a 404, proves the backend is
// listening. States: up ⇄ down; `onChange` fires on each transition.
import type { BackendClient } from './backend-client.js';

export interface HealthOptions {
  /** Probe interval while up (0 = only learn "down" from failed calls). */
  upIntervalMs: number;
  /** First retry delay while down, doubling up to `maxBackoffMs`. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** A probe that takes longer than this counts as a failure. */
  probeTimeoutMs: number;
}

export const DEFAULT_HEALTH_OPTIONS: HealthOptions = { upIntervalMs: 10_000, minBackoffMs: 500, maxBackoffMs: 5_000, probeTimeoutMs: 5_000 };

export class BackendHealth {
  private up = true;
  private why = '';
  private backoffMs: number;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private stopped = false;

  constructor(
    private readonly backend: BackendClient,
    private readonly opts: HealthOptions,
    private readonly onChange: (up: boolean, reason: string) => void,
  ) {
    this.backoffMs = opts.minBackoffMs;
  }

  get isUp(): boolean {
    return this.up;
  }

  get reason(): string {
    return this.why;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** A call failed before any answer: the backend is down from now on, until a probe says otherwise. */
  markDown(reason: string): void {
    if (this.stopped) return;
    if (!this.up) {
      this.why = reason;
      return;
    }
    this.up = false;
    this.why = reason;
    this.backoffMs = this.opts.minBackoffMs;
    this.onChange(false, reason);
    if (!this.probing) this.schedule();
  }

  /** The backend answered something: it is up. */
  markUp(): void {
    if (this.up || this.stopped) return;
    this.up = true;
    this.why = '';
    this.onChange(true, '');
    if (!this.probing) this.schedule();
  }

  /** Probes now (also used at start-up before anything is known), then arms the next probe. */
  async probe(): Promise<boolean> {
    if (this.probing || this.stopped) return this.up;
    this.probing = true;
    try {
      const res = await this.backend.get('/health', AbortSignal.timeout(this.opts.probeTimeoutMs));
      const text = await res.body.text();
      if (res.statusCode === 503) this.markDown(`the backend is not ready (503${loadingMessage(text)})`);
      else this.markUp();
    } catch (err) {
      this.markDown(describeFailure(err, this.backend.origin));
    } finally {
      this.probing = false;
      this.schedule();
    }
    return this.up;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    let delay: number;
    if (this.up) {
      if (this.opts.upIntervalMs <= 0) return;
      delay = this.opts.upIntervalMs;
    } else {
      delay = this.backoffMs;
      this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs * 2);
    }
    this.timer = setTimeout(() => void this.probe(), delay);
    this.timer.unref();
  }
}

/** ": Loading model" from a llama-server-style error body, or nothing. */
function loadingMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } };
    return typeof j.error?.message === 'string' ? `: ${j.error.message.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

/** One line for a call that got no answer: "the backend at X is unreachable (ECONNREFUSED)". */
export function describeFailure(err: unknown, origin: string): string {
  const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? (e.name === 'TimeoutError' ? 'timeout' : undefined);
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return `the backend at ${origin} closed the connection before answering (${code})`;
  return `the backend at ${origin} is unreachable (${code ?? e.message ?? 'unknown error'})`;
}
